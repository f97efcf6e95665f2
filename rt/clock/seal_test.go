package clock

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/rt/vclock"
)

// TestTraceeMappingCannotBecomeWritable: the other ways to the page that a
// dilated program has (issue 10 item 8) besides reopening a descriptor
// (TestPageCannotBeWritten): the read-only shared mapping dilation gives it
// (the vDSO's clock slot) turned writable with mprotect, a private
// writable mapping (a copy: the clock must not change), and the mapping
// reopened read-write through /proc/self/map_files.
func TestTraceeMappingCannotBecomeWritable(t *testing.T) {
	c := newClock(t, "10")
	ro, err := c.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	b, err := unix.Mmap(int(ro.Fd()), 0, vclock.PageSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	if err := unix.Mprotect(b, unix.PROT_READ|unix.PROT_WRITE); err == nil {
		t.Error("mprotect made the shared clock mapping writable")
	} else if !errors.Is(err, syscall.EACCES) {
		t.Errorf("mprotect: %v, want EACCES", err)
	}
	addr := uintptr(unsafe.Pointer(&b[0]))
	mf := fmt.Sprintf("/proc/self/map_files/%x-%x", addr, addr+vclock.PageSize)
	if f, err := os.OpenFile(mf, os.O_RDWR, 0); err == nil {
		if _, err := f.WriteAt(make([]byte, 8), vclock.PageOffMult); err == nil {
			t.Errorf("%s: write succeeded", mf)
		}
		f.Close()
	} else {
		t.Logf("%s: %v", mf, err)
	}
	priv, err := unix.Mmap(int(ro.Fd()), 0, vclock.PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err == nil {
		clear(priv) // a copy of the tracee's own
		unix.Munmap(priv)
	}
	if p, err := c.Load(); err != nil || p.TDF != (vclock.TDF{Num: 10, Den: 1}) {
		t.Errorf("page changed: %+v %v", p, err)
	}
}
