package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/safefile"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/mem/source"
)

// nobody is the unprivileged user the attacks are made as.
const nobody = 65534

// TestPackOutputNotReplacingDevicesOrInputs reproduces issue 10, item 1:
// `vmux mem pack -o /dev/null img.raw` replaced /dev/null with a regular
// file, and `vmux mem pack -o X X` silently replaced its own input. The
// output must be absent or a regular file that is none of the inputs.
func TestPackOutputNotReplacingDevicesOrInputs(t *testing.T) {
	dir := t.TempDir()
	img := memImage(t, dir, "img.raw", 1)
	orig, _ := os.ReadFile(img)
	link := filepath.Join(dir, "link.raw")
	if err := os.Link(img, link); err != nil {
		t.Fatal(err)
	}
	sym := filepath.Join(dir, "sym.vmx")
	if err := os.Symlink(filepath.Join(dir, "elsewhere.vmx"), sym); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		out  string
		want error
	}{
		{"/dev/null", safefile.ErrNotRegular},
		{img, safefile.ErrSameFile},  // pack -o X X
		{link, safefile.ErrSameFile}, // X under another name
		{sym, safefile.ErrNotRegular},
		{fifo, safefile.ErrNotRegular},
		{dir, safefile.ErrNotRegular},
	} {
		_, _, err := memRun(t, context.Background(), "mem", "pack", "-q", "-o", tc.out, img)
		if !errors.Is(err, tc.want) {
			t.Errorf("pack -o %s: %v, want %v", tc.out, err, tc.want)
		}
	}
	if st, err := os.Stat("/dev/null"); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is no longer a character device: %v %v", st.Mode(), err)
	}
	if got, _ := os.ReadFile(img); !bytes.Equal(got, orig) {
		t.Fatal("the input was replaced")
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere.vmx")); err == nil {
		t.Fatal("pack wrote through the symlink")
	}
	// A regular file that is not an input is replaced, as before.
	old := filepath.Join(dir, "old.vmx")
	os.WriteFile(old, []byte("stale"), 0o644)
	if _, _, err := memRun(t, context.Background(), "mem", "pack", "-q", "-o", old, img); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(old); st.Mode().Perm() != 0o600 {
		t.Errorf("store mode %v, want 0600", st.Mode().Perm())
	}
}

// TestPackSameSourceTwice: the same memory given twice must not double the
// savings: a file under a second name, a hard link, a symlink, pid:N
// twice, pid:N and a thread of N.
func TestPackSameSourceTwice(t *testing.T) {
	dir := t.TempDir()
	img := memImage(t, dir, "img.raw", 1)
	hard, sym := filepath.Join(dir, "hard.raw"), filepath.Join(dir, "sym.raw")
	os.Link(img, hard)
	os.Symlink(img, sym)
	self := fmt.Sprintf("pid:%d", os.Getpid())
	tasks, _ := os.ReadDir("/proc/self/task")
	thread := ""
	for _, e := range tasks {
		if e.Name() != fmt.Sprint(os.Getpid()) {
			thread = "pid:" + e.Name()
		}
	}
	cases := [][]string{{img, img}, {img, hard}, {img, "raw:" + sym}, {self, self}}
	if thread != "" {
		cases = append(cases, []string{self, thread})
	}
	for _, srcs := range cases {
		_, _, err := memRun(t, context.Background(), append([]string{"mem", "analyze"}, srcs...)...)
		if !errors.Is(err, source.ErrDuplicate) {
			t.Errorf("analyze %v: %v, want ErrDuplicate", srcs, err)
		}
	}
	// Two different files with the same content are two sources.
	other := memImage(t, dir, "other.raw", 1)
	if _, _, err := memRun(t, context.Background(), "mem", "analyze", img, other); err != nil {
		t.Fatal(err)
	}
}

// TestUnpackNoSymlinkFollowing reproduces issue 10, item 2: an
// unprivileged user plants, in a world-writable directory, s.vmx.d (or
// s.vmx.d/00-img.raw) as a symlink to a root-owned file; root's unpack must
// not write that file. Unpacked files are owner-only whatever the umask.
func TestUnpackNoSymlinkFollowing(t *testing.T) {
	testutil.MustRoot(t)
	dir := t.TempDir()
	img := memImage(t, dir, "img.raw", 1)
	pub := filepath.Join(dir, "pub") // a world-writable directory, like /tmp
	os.Mkdir(pub, 0o777)
	os.Chmod(pub, 0o1777)
	st := filepath.Join(pub, "s.vmx")
	if _, _, err := memRun(t, context.Background(), "mem", "pack", "-q", "-o", st, img); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("root's file"), 0o644)
	victimDir := filepath.Join(dir, "victimdir")
	os.Mkdir(victimDir, 0o755)

	// 1. The attacker's own directory with the symlink inside.
	ad := st + ".d"
	os.Mkdir(ad, 0o777)
	os.Chown(ad, nobody, nobody)
	planted := filepath.Join(ad, "00-img.raw")
	os.Symlink(victim, planted)
	os.Lchown(planted, nobody, nobody)
	if _, _, err := memRun(t, context.Background(), "mem", "unpack", st); !errors.Is(err, safefile.ErrUnsafeDir) {
		t.Errorf("unpack into the attacker's directory: %v, want ErrUnsafeDir", err)
	}
	// 2. The output directory itself a symlink to a root-owned directory.
	os.RemoveAll(ad)
	os.Symlink(victimDir, ad)
	os.Lchown(ad, nobody, nobody)
	if _, _, err := memRun(t, context.Background(), "mem", "unpack", st); err == nil {
		t.Errorf("unpack through a symlinked output directory succeeded")
	}
	if b, _ := os.ReadFile(victim); string(b) != "root's file" {
		t.Fatalf("the victim file was overwritten")
	}
	if ents, _ := os.ReadDir(victimDir); len(ents) != 0 {
		t.Fatalf("unpack wrote into the symlinked directory: %v", ents)
	}
	// 3. A directory of ours with a symlink left in it: replaced, not followed.
	os.Remove(ad)
	mine := filepath.Join(dir, "mine")
	os.Mkdir(mine, 0o700)
	os.Symlink(victim, filepath.Join(mine, "00-img.raw"))
	old := syscall.Umask(0)
	_, _, err := memRun(t, context.Background(), "mem", "unpack", st, "-o", mine)
	fresh := filepath.Join(dir, "fresh")
	_, _, err2 := memRun(t, context.Background(), "mem", "unpack", st, "-o", fresh)
	syscall.Umask(old)
	if err != nil || err2 != nil {
		t.Fatal(err, err2)
	}
	if b, _ := os.ReadFile(victim); string(b) != "root's file" {
		t.Fatalf("the victim file was overwritten")
	}
	want, _ := os.ReadFile(img)
	for _, d := range []string{mine, fresh} {
		out := filepath.Join(d, "00-img.raw")
		fi, err := os.Lstat(out)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want a regular 0600 file", out, fi.Mode(), err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
			t.Errorf("%s differs from the image", out)
		}
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Errorf("new output directory mode %v, want 0700", fi.Mode().Perm())
	}
}

// TestMemInputsNotBlocking: a FIFO or a device given as a source, a store
// or a spec fails at once (it used to block in open, or read /dev/zero
// until memory ran out).
func TestMemInputsNotBlocking(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"mem", "analyze", fifo}, {"mem", "analyze", "/dev/zero"}, {"mem", "analyze", "raw:" + fifo},
		{"mem", "analyze", "fc:/dev/zero"}, {"mem", "analyze", "fc:" + memImage(t, dir, "m", 1) + "," + fifo},
		{"mem", "verify", fifo}, {"mem", "unpack", "/dev/zero"}, {"mem", "cat", fifo, "0", "0"},
	} {
		done := make(chan error, 1)
		go func() { _, _, err := memRun(t, context.Background(), args...); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, safefile.ErrNotRegular) {
				t.Errorf("%v: %v, want ErrNotRegular", args, err)
			}
		case <-time.After(5 * time.Second):
			os.WriteFile(fifo, nil, 0) // unblock it
			t.Fatalf("%v blocked", args)
		}
	}
}

// TestKernelThreadSource: pid:2 (kthreadd) says it is a kernel thread, not
// that it does not exist.
func TestKernelThreadSource(t *testing.T) {
	_, _, err := memRun(t, context.Background(), "mem", "analyze", "pid:2")
	if !errors.Is(err, source.ErrKernelThread) || errors.Is(err, source.ErrProcessGone) {
		t.Fatalf("pid:2: %v, want ErrKernelThread", err)
	}
	if !strings.Contains(err.Error(), "kernel thread") {
		t.Errorf("message %q does not say kernel thread", err)
	}
}

// TestMemJSON: pack --json reports the analysis and the store, unpack
// --json the files it wrote; verify
// --json reports a failure as JSON too (and still exits non-zero).
func TestMemJSON(t *testing.T) {
	dir := t.TempDir()
	img := memImage(t, dir, "a.img", 3)
	st := filepath.Join(dir, "s.vmx")
	out, _, err := memRun(t, context.Background(), "mem", "pack", "--json", "-o", st, img)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		TotalBytes int64 `json:"total_bytes"`
		Store      struct {
			Path      string `json:"path"`
			FileBytes int64  `json:"file_bytes"`
		} `json:"store"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Store.Path != st || p.Store.FileBytes == 0 || p.TotalBytes == 0 {
		t.Fatalf("pack --json (%v): %s", err, out)
	}
	// unpack --json lists the files written.
	out, _, err = memRun(t, context.Background(), "mem", "unpack", "--json", "-o", filepath.Join(dir, "u"), st)
	var u struct {
		Outputs []struct {
			Path  string `json:"path"`
			Bytes int64  `json:"bytes"`
		} `json:"outputs"`
	}
	if jerr := json.Unmarshal([]byte(out), &u); err != nil || jerr != nil || len(u.Outputs) != 1 {
		t.Fatalf("unpack --json (%v, %v): %s", err, jerr, out)
	}
	if fi, serr := os.Stat(u.Outputs[0].Path); serr != nil || fi.Size() != u.Outputs[0].Bytes {
		t.Fatalf("unpack --json names %+v: %v", u.Outputs[0], serr)
	}
	data, _ := os.ReadFile(st)
	data[len(data)/3] ^= 0x40
	os.WriteFile(st, data, 0o600)
	out, _, err = memRun(t, context.Background(), "mem", "verify", "--json", st)
	var v struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err == nil {
		t.Fatal("verify passed a corrupted store")
	}
	if jerr := json.Unmarshal([]byte(out), &v); jerr != nil || v.OK || v.Error == "" {
		t.Fatalf("verify --json of a corrupt store (%v): %q", jerr, out)
	}
}
