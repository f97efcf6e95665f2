package source

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/mem/source/sourcetest"
)

// gcore dumps the filler with gdb's gcore and returns the core's path.
func gcore(t *testing.T, f *sourcetest.Filler) string {
	t.Helper()
	gc := testutil.MustHaveCommand(t, "gcore")
	out := filepath.Join(t.TempDir(), "core")
	cmd := exec.Command(gc, "-o", out, fmt.Sprint(f.PID()))
	cmd.WaitDelay = time.Second
	done := make(chan error, 1)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gcore: %v\n%s", err, log.String())
		}
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("gcore took more than 90s")
	}
	path := fmt.Sprintf("%s.%d", out, f.PID())
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("gcore wrote no core: %v\n%s", err, log.String())
	}
	return path
}

func TestELFCoreFromGcore(t *testing.T) {
	testutil.MustRoot(t) // gdb attaches with ptrace
	f := sourcetest.StartC(t, testutil.MustHaveCommand(t, "gcc"), 99)
	core := gcore(t, f)
	s, err := Open(core, Options{}) // recognized by its header
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Kind() != KindELFCore || len(s.Residue()) == 0 {
		t.Fatalf("kind %v, %d residue extents", s.Kind(), len(s.Residue()))
	}
	var c collect
	if err := s.Scan(&c); err != nil {
		t.Fatal(err)
	}
	got, ok := c.at(f.DataAddr, sourcetest.Pages*PageSize)
	if !ok || !bytes.Equal(got, sourcetest.Expected(99)) {
		t.Fatalf("filler's pages not found intact in the core (found %v)", ok)
	}
	checkReread(t, s, &c)
	// Residue plus segment data cover the file exactly once.
	var covered int64
	for _, e := range s.Residue() {
		covered += int64(len(e.Data))
	}
	for _, r := range s.Regions() {
		covered += int64(r.FileLen)
	}
	if covered != s.FileSize() {
		t.Fatalf("residue and segments cover %d of %d bytes", covered, s.FileSize())
	}

	// A truncated copy is refused with ErrTruncated; a corrupt header with
	// ErrCorrupt; neither panics.
	data, err := os.ReadFile(core)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	trunc := filepath.Join(dir, "trunc")
	os.WriteFile(trunc, data[:len(data)/2], 0o600)
	if _, err := OpenELFCore(trunc); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated core: %v", err)
	}
	badPath := filepath.Join(dir, "bad")
	for _, off := range []int{0x26, 0x27, 0x3a} { // e_phoff high bytes, e_shnum
		bad := bytes.Clone(data)
		bad[off] ^= 0x7f
		os.WriteFile(badPath, bad, 0o600)
		if _, err := OpenELFCore(badPath); err == nil {
			t.Fatalf("core with byte %#x corrupted accepted", off)
		}
	}
	for n := 0; n < 200 && n < len(data); n += 7 {
		os.WriteFile(badPath, data[:n], 0o600)
		if s, err := OpenELFCore(badPath); err == nil {
			s.Close()
			t.Fatalf("core cut to %d bytes accepted", n)
		}
	}
}
