package dilate

import (
	"math"
	"testing"
)

func TestTimeStructConversions(t *testing.T) {
	for _, tc := range []struct {
		sec, nsec int64
		ns        int64
		ok        bool
	}{
		{0, 0, 0, true},
		{1, 5, 1_000_000_005, true},
		{-1, 0, 0, false},
		{0, -1, 0, false},
		{0, 1_000_000_000, 0, false},
		{math.MaxInt64, 0, math.MaxInt64, true}, // saturates
	} {
		ns, ok := tsToNs(tc.sec, tc.nsec)
		if ns != tc.ns || ok != tc.ok {
			t.Errorf("tsToNs(%d, %d) = %d, %v; want %d, %v", tc.sec, tc.nsec, ns, ok, tc.ns, tc.ok)
		}
	}
	if ns, ok := tvToNs(2, 999_999); !ok || ns != 2_999_999_000 {
		t.Errorf("tvToNs(2, 999999) = %d, %v", ns, ok)
	}
	if _, ok := tvToNs(0, 1_000_000); ok {
		t.Error("tvToNs accepted usec 1000000")
	}
	// A positive timeout never rounds to zero, and never rounds down.
	for _, tc := range []struct{ ns, sec, usec int64 }{
		{1, 0, 1}, {999, 0, 1}, {1000, 0, 1}, {1001, 0, 2}, {999_999_001, 1, 0}, {0, 0, 0},
	} {
		if s, u := nsToTvUp(tc.ns); s != tc.sec || u != tc.usec {
			t.Errorf("nsToTvUp(%d) = %d.%06d, want %d.%06d", tc.ns, s, u, tc.sec, tc.usec)
		}
	}
	if s, n := nsToTs(-1); s != -1 || n != 999_999_999 {
		t.Errorf("nsToTs(-1) = %d, %d", s, n)
	}
}

func TestScratchSlots(t *testing.T) {
	const base = 0x7f0000000000
	a := newAspace(base)
	seen := map[uint64]bool{}
	for i := 0; i < numSlots; i++ {
		s, ok := a.alloc()
		if !ok || s < base || s+slotSize > base+scratchSize || seen[s] {
			t.Fatalf("slot %d: %#x, %v (duplicate or out of range)", i, s, ok)
		}
		seen[s] = true
	}
	if _, ok := a.alloc(); ok {
		t.Fatal("allocated more slots than exist")
	}
	a.release(base)
	if s, ok := a.alloc(); !ok || s != base {
		t.Fatalf("released slot not reused: %#x, %v", s, ok)
	}
	a.release(0) // no slot: ignored
	a.release(base + scratchSize)
	a.release(base + scratchSize + slotSize)
	if _, ok := a.alloc(); ok {
		t.Fatal("release of a foreign address freed a slot")
	}
	if f := a.fork(); f.next != 0 || len(f.free) != 0 || f.scratch != base {
		t.Fatalf("fork: next %d, %d free, base %#x", f.next, len(f.free), f.scratch)
	}
}
