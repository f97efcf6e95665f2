package vclocktest

import (
	"testing"
	"time"

	"github.com/vmux/vmux/rt/vclock"
)

// Controller is a running virtual clock under test.
type Controller interface {
	SetTDF(k vclock.TDF) error
	Pause() error
	Resume() error
	// Read returns the virtual reading of wall clock id now.
	Read(t *testing.T, id vclock.ClockID) int64
}

// Env is how the suite lets real time pass for a Controller and measures
// it: the bounds on every virtual interval come from real readings taken
// just outside and just inside the two Reads, so they are exact for a fake
// and rigorous, with no tolerance, for a real clock on a noisy machine.
type Env struct {
	// Advance lets about d of real time pass.
	Advance func(d time.Duration)
	// Now reads the real clock the Controller's MONOTONIC is based on.
	Now func() time.Duration
}

var wall = []vclock.ClockID{vclock.Realtime, vclock.Monotonic, vclock.MonotonicRaw, vclock.Boottime, vclock.TAI}

// Run checks rates at k = 10 and 1/2, pause freezing every wall clock,
// resume continuing from the frozen value, and rate changes without a
// step back.
func Run(t *testing.T, c Controller, env Env) {
	t.Helper()
	rate := func(k vclock.TDF, d time.Duration) {
		t.Helper()
		if err := c.SetTDF(k); err != nil {
			t.Fatalf("SetTDF(%v): %v", k, err)
		}
		a0 := env.Now()
		r0 := c.Read(t, vclock.Monotonic)
		b0 := env.Now()
		env.Advance(d)
		a1 := env.Now()
		r1 := c.Read(t, vclock.Monotonic)
		b1 := env.Now()
		lo := float64(a1-b0)/k.Float64() - 2
		hi := float64(b1-a0)/k.Float64() + 2
		if v := float64(r1 - r0); v < lo || v > hi {
			t.Errorf("k=%v: %v real read %.0f ns virtual, want [%.0f, %.0f]", k, a1-b0, v, lo, hi)
		}
	}
	rate(vclock.TDF{Num: 10, Den: 1}, 50*time.Millisecond)
	rate(vclock.TDF{Num: 1, Den: 2}, 20*time.Millisecond)

	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	var frozen [vclock.NumClocks]int64
	for _, id := range wall {
		frozen[id] = c.Read(t, id)
	}
	env.Advance(20 * time.Millisecond)
	for _, id := range wall {
		if v := c.Read(t, id); v != frozen[id] {
			t.Errorf("%v moved while paused: %d -> %d", id, frozen[id], v)
		}
	}
	a := env.Now()
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	b := env.Now()
	env.Advance(20 * time.Millisecond)
	a1 := env.Now()
	v := c.Read(t, vclock.Monotonic) - frozen[vclock.Monotonic]
	b1 := env.Now()
	// Resumed at k = 1/2 from the frozen value: 2x the real time since.
	if lo, hi := float64(a1-b)*2-2, float64(b1-a)*2+2; float64(v) < lo || float64(v) > hi {
		t.Errorf("resumed at k=1/2: read %d ns virtual from the frozen value, want [%.0f, %.0f]", v, lo, hi)
	}

	ks := []vclock.TDF{{Num: 100, Den: 1}, {Num: 1, Den: 1000}, {Num: 1, Den: 3}, {Num: 7, Den: 2}}
	prev := c.Read(t, vclock.Monotonic)
	for i := range 40 {
		var err error
		switch i % 5 {
		case 3:
			err = c.Pause()
		case 4:
			err = c.Resume()
		default:
			err = c.SetTDF(ks[i%len(ks)])
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			env.Advance(time.Millisecond)
		}
		v := c.Read(t, vclock.Monotonic)
		if v < prev {
			t.Fatalf("change %d: MONOTONIC stepped back %d -> %d", i, prev, v)
		}
		prev = v
	}
}
