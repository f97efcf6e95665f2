package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

func TestReadRegularRefusesAndBounds(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/zero", "/dev/null", fifo, dir} {
		done := make(chan error, 1)
		go func() { _, err := ReadRegular(p, 1<<20); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("%s: %v, want ErrNotRegular", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadRegular(%s) blocked", p)
		}
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, []byte(strings.Repeat("x", 101)), 0o600)
	if _, err := ReadRegular(big, 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("101 bytes with a bound of 100: %v", err)
	}
	if b, err := ReadRegular(big, 101); err != nil || len(b) != 101 {
		t.Errorf("101 bytes with a bound of 101: %d, %v", len(b), err)
	}
	// A symlink to a regular file is read (inputs follow symlinks).
	ln := filepath.Join(dir, "ln")
	os.Symlink(big, ln)
	if _, err := ReadRegular(ln, 200); err != nil {
		t.Errorf("symlink to a regular file: %v", err)
	}
}

func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.WriteFile(in, []byte("x"), 0o600)
	st, _ := os.Stat(in)
	hard := filepath.Join(dir, "hard")
	os.Link(in, hard)
	sym := filepath.Join(dir, "sym")
	os.Symlink(in, sym)
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("y"), 0o600)
	for _, tc := range []struct {
		path string
		want error
	}{
		{filepath.Join(dir, "new"), nil}, {other, nil},
		{"/dev/null", ErrNotRegular}, {dir, ErrNotRegular}, {sym, ErrNotRegular},
		{in, ErrSameFile}, {hard, ErrSameFile},
	} {
		if err := CheckOutput(tc.path, st); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tc.path, err, tc.want)
		}
	}
}

func TestOutputDir(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)

	// A new directory: 0700 whatever the umask; a planted symlink in it
	// is replaced, not followed.
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	out := filepath.Join(dir, "out")
	d, err := OutputDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o700 {
		t.Errorf("new directory mode %v", fi.Mode().Perm())
	}
	os.Symlink(victim, filepath.Join(out, "f"))
	f, err := d.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new")
	f.Close()
	d.Close()
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatal("Create wrote through a symlink")
	}
	if fi, _ := os.Lstat(filepath.Join(out, "f")); !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("created %v, want a regular 0600 file", fi.Mode())
	}
	// An existing directory others can write, or a symlink to one of ours.
	ww := filepath.Join(dir, "ww")
	os.Mkdir(ww, 0o777)
	if _, err := OutputDir(ww); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("world-writable directory: %v", err)
	}
	ln := filepath.Join(dir, "ln")
	os.Symlink(out, ln)
	if _, err := OutputDir(ln); err == nil {
		t.Errorf("symlink to a directory accepted")
	}
	// A regular file where the directory should be.
	if _, err := OutputDir(victim); err == nil {
		t.Errorf("a file accepted as the output directory")
	}
	if d, err := OutputDir(out); err != nil { // ours: reused
		t.Errorf("existing own directory: %v", err)
	} else {
		d.Close()
	}
}

func TestOutputDirOfAnotherUser(t *testing.T) {
	testutil.MustRoot(t)
	dir := t.TempDir()
	theirs := filepath.Join(dir, "theirs")
	os.Mkdir(theirs, 0o700)
	os.Chown(theirs, 65534, 65534)
	if _, err := OutputDir(theirs); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("another user's directory: %v, want ErrUnsafeDir", err)
	}
}
