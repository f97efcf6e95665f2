package dilate

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// Scratch memory: every dilated address space gets one private anonymous
// region, mapped at exec, cut into fixed slots. A rewritten syscall gets its
// arguments from a slot instead of the caller's (possibly const, possibly
// shared between threads) memory; a call with an exit stop frees its slot
// there, and each thread keeps one slot for calls without an exit stop.
// The region is large (a JVM may have thousands of threads) but only the
// pages of slots in use ever become resident.
const (
	slotSize    = 128
	scratchSize = 4 << 20
	numSlots    = scratchSize / slotSize
)

// aspace is one address space (a process, or several sharing CLONE_VM).
type aspace struct {
	scratch uint64 // base of the scratch region; 0 until exec injection
	insn    uint64 // a syscall instruction (in the real vDSO), for injection
	next    int    // slots below next have been handed out at least once
	free    []int  // handed-out slots given back
}

func newAspace(scratch uint64) *aspace { return &aspace{scratch: scratch} }

// fork makes the allocator of a child that got a private copy of memory.
func (a *aspace) fork() *aspace {
	f := newAspace(a.scratch)
	f.insn = a.insn
	return f
}

func (a *aspace) alloc() (uint64, bool) {
	var i int
	switch {
	case len(a.free) > 0:
		i = a.free[len(a.free)-1]
		a.free = a.free[:len(a.free)-1]
	case a.next < numSlots:
		i = a.next
		a.next++
	default:
		return 0, false
	}
	return a.scratch + uint64(i)*slotSize, true
}

func (a *aspace) release(addr uint64) {
	if addr == 0 || addr < a.scratch || addr >= a.scratch+numSlots*slotSize {
		return
	}
	a.free = append(a.free, int((addr-a.scratch)/slotSize))
}

// nsPerSec and friends convert kernel time structs.
const (
	nsPerSec  = int64(time.Second)
	nsPerUsec = int64(time.Microsecond)
)

// tsToNs converts a timespec to ns, saturating; ok is false for a value the
// kernel would reject (negative or nsec out of range): such calls are left
// alone so the kernel reports EINVAL itself.
func tsToNs(sec, nsec int64) (int64, bool) {
	if sec < 0 || nsec < 0 || nsec >= nsPerSec {
		return 0, false
	}
	if sec > (math.MaxInt64-nsec)/nsPerSec {
		return math.MaxInt64, true
	}
	return sec*nsPerSec + nsec, true
}

// tvToNs converts a timeval (usec) to ns, saturating.
func tvToNs(sec, usec int64) (int64, bool) {
	if sec < 0 || usec < 0 || usec >= 1_000_000 {
		return 0, false
	}
	if sec > (math.MaxInt64-usec*nsPerUsec)/nsPerSec {
		return math.MaxInt64, true
	}
	return sec*nsPerSec + usec*nsPerUsec, true
}

// nsToTs splits ns (>= 0 or a negative absolute time) into sec, nsec.
func nsToTs(ns int64) (int64, int64) {
	sec, nsec := ns/nsPerSec, ns%nsPerSec
	if nsec < 0 {
		sec, nsec = sec-1, nsec+nsPerSec
	}
	return sec, nsec
}

// nsToTvUp splits ns into a timeval, rounding up to whole microseconds so a
// positive timeout never becomes shorter (or zero).
func nsToTvUp(ns int64) (int64, int64) {
	sec, nsec := nsToTs(ns)
	usec := (nsec + nsPerUsec - 1) / nsPerUsec
	if usec == 1_000_000 {
		sec, usec = sec+1, 0
	}
	return sec, usec
}

// nsToTvDown splits ns into a timeval truncated to microseconds.
func nsToTvDown(ns int64) (int64, int64) {
	sec, nsec := nsToTs(ns)
	return sec, nsec / nsPerUsec
}

// mem reads and writes pairs of int64 in a tracee (timespec, timeval).
type mem struct{ tid int }

func (m mem) read(addr uint64, n int) ([]int64, error) {
	buf := make([]byte, 8*n)
	if err := linux.TraceeRead(m.tid, addr, buf); err != nil {
		return nil, err
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(buf[8*i:]))
	}
	return out, nil
}

func (m mem) write(addr uint64, v ...int64) error {
	buf := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(buf[8*i:], uint64(x))
	}
	return linux.TraceeWrite(m.tid, addr, buf)
}
