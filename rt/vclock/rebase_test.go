package vclock

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

var someTDFs = []TDF{{1, 1}, {10, 1}, {1, 2}, {1, 3}, {5, 2}, {1, 1000}, {10000, 1}, {7, 3}, {100, 1}}

// checkStep asserts that virtual time moved from prev to cur without going
// backwards, by at most the real advance / k (+ rounding slack).
func checkStep(t *testing.T, what string, prev, cur Now, realStep time.Duration, maxK TDF) {
	t.Helper()
	for id := range ClockID(NumClocks) {
		if id.Kind() != KindWall {
			continue
		}
		if cur[id] < prev[id] {
			t.Fatalf("%s: %v went backwards: %d -> %d", what, id, prev[id], cur[id])
		}
		// No jump: the advance is bounded by the fastest rate seen (1/minK).
		limit := float64(realStep)/maxK.Float64()*(1+1e-6) + 2
		if d := float64(cur[id] - prev[id]); d > limit {
			t.Fatalf("%s: %v jumped %.0f ns for %v real (limit %.0f)", what, id, d, realStep, limit)
		}
	}
}

// TestRebaseProperty drives random sequences of rate changes, pauses,
// resumes and advances (including zero) and checks that every wall clock
// is monotonic and continuous, that pause freezes it, and that each
// segment runs at its own rate.
func TestRebaseProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for seq := range 300 {
		f := NewFake(int64(r.Uint64()>>2), int64(r.Uint64()>>3))
		p := mustParams(t, "1", f.Now())
		prev := p.VirtNow(f.Now())
		for step := range 60 {
			what := func(op string) string { return op + " (seq " + itoa(seq) + " step " + itoa(step) + ")" }
			switch r.IntN(5) {
			case 0: // change rate
				k := someTDFs[r.IntN(len(someTDFs))]
				now := f.Now()
				before := p.VirtNow(now)
				var err error
				if p, err = p.SetTDF(k, now); err != nil {
					t.Fatal(err)
				}
				if after := p.VirtNow(now); after != before {
					t.Fatalf("%s: SetTDF(%v) moved virtual time at the instant of change: %v -> %v", what("settdf"), k, before, after)
				}
				if p.TDF != k || (!p.Paused && p.Mult != k.Mult()) || (p.Paused && p.Mult != 0) {
					t.Fatalf("%s: after SetTDF(%v): %+v", what("settdf"), k, p)
				}
			case 1:
				now := f.Now()
				before := p.VirtNow(now)
				p = p.Pause(now)
				if !p.Paused || p.Mult != 0 || p.VirtNow(now) != before {
					t.Fatalf("%s: pause: %+v", what("pause"), p)
				}
			case 2:
				now := f.Now()
				before := p.VirtNow(now)
				p = p.Resume(now)
				if p.Paused || p.Mult != p.TDF.Mult() || p.VirtNow(now) != before {
					t.Fatalf("%s: resume: %+v", what("resume"), p)
				}
			default:
				d := time.Duration(r.Int64N(int64(10 * time.Second)))
				if r.IntN(4) == 0 {
					d = time.Duration(r.IntN(3))
				}
				f.Advance(d)
				cur := p.VirtNow(f.Now())
				checkStep(t, what("advance"), prev, cur, d, MinTDF)
				if p.Paused && cur != prev {
					t.Fatalf("%s: paused clock moved %v -> %v", what("advance"), prev, cur)
				}
				if !p.Paused {
					want := float64(d) / p.TDF.Float64()
					got := float64(cur[Monotonic] - prev[Monotonic])
					if diff := got - want; diff > 2+want*1e-8 || diff < -2-want*1e-8 {
						t.Fatalf("%s: advanced %.0f ns for %v at k=%v, want %.0f", what("advance"), got, d, p.TDF, want)
					}
				}
				prev = cur
				continue
			}
			cur := p.VirtNow(f.Now())
			checkStep(t, what("op"), prev, cur, 0, MinTDF)
			prev = cur
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestSetTDFErrors(t *testing.T) {
	p := mustParams(t, "2", Now{})
	q, err := p.SetTDF(TDF{}, Now{})
	if err == nil || q != p {
		t.Errorf("SetTDF(zero) = %+v, %v; want p unchanged and an error", q, err)
	}
}

func TestPauseResumeIdempotent(t *testing.T) {
	f := NewFake(1e9, 0)
	p := mustParams(t, "10", f.Now())
	if q := p.Resume(f.Now()); q != p {
		t.Error("Resume of a running clock changed it")
	}
	p = p.Pause(f.Now())
	f.Advance(time.Second)
	if q := p.Pause(f.Now()); q != p {
		t.Error("Pause of a paused clock changed it")
	}
	// SetTDF while paused stays paused and resumes at the new rate.
	p, _ = p.SetTDF(TDF{2, 1}, f.Now())
	if !p.Paused || p.Mult != 0 {
		t.Fatalf("SetTDF while paused unpaused: %+v", p)
	}
	at := p.Virt(Monotonic, f.Now()[Monotonic])
	p = p.Resume(f.Now())
	f.Advance(2 * time.Second)
	if got := p.Virt(Monotonic, f.Now()[Monotonic]) - at; got < 1e9-2 || got > 1e9 {
		t.Errorf("resumed at k=2 advanced %d for 2 s real, want 1e9", got)
	}
}

// TestFakeAndClock runs the in-process Clock over the Fake source.
func TestFakeAndClock(t *testing.T) {
	f := NewFake(1e9, 1.7e18)
	c, err := NewClock(f, Config{TDF: TDF{10, 1}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := c.Now()
	m0 := c.Read(Monotonic)
	f.Advance(10 * time.Second)
	if d := c.Now().Sub(t0); d < time.Second-2 || d > time.Second {
		t.Errorf("10 s real at k=10 read %v, want 1 s", d)
	}
	c.Pause()
	m1 := c.Read(Monotonic)
	f.Advance(time.Hour)
	if m2 := c.Read(Monotonic); m2 != m1 {
		t.Errorf("paused clock moved %d -> %d", m1, m2)
	}
	c.Resume()
	if err := c.SetTDF(TDF{1, 2}); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Second)
	if got := c.Read(Monotonic) - m1; got != 2e9 {
		t.Errorf("1 s real at k=1/2 after pause read %d, want 2e9", got)
	}
	if m1-m0 < 1e9-2 {
		t.Errorf("before the pause: %d", m1-m0)
	}
	if err := c.SetTDF(TDF{0, 1}); err == nil {
		t.Error("SetTDF(0) accepted")
	}
	if c.Params().TDF != (TDF{1, 2}) {
		t.Errorf("Params().TDF = %v", c.Params().TDF)
	}
	if _, err := NewClock(f, Config{}); err == nil {
		t.Error("NewClock without TDF accepted")
	}
	f.Advance(-time.Second) // a REALTIME step back is allowed by the fake
}
