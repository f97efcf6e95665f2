package vclock

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"
)

func refMulDiv(d int64, n, m uint64, up bool) int64 {
	x := new(big.Int).Mul(big.NewInt(d), new(big.Int).SetUint64(n))
	q, r := new(big.Int).QuoRem(x, new(big.Int).SetUint64(m), new(big.Int))
	if up && r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return satBig(q)
}

func TestVirtToReal(t *testing.T) {
	cases := []struct {
		k    TDF
		in   time.Duration
		want time.Duration
	}{
		{TDF{10, 1}, time.Millisecond, 10 * time.Millisecond},
		{TDF{1, 2}, time.Millisecond, 500 * time.Microsecond},
		{TDF{1, 3}, time.Second, 333333334}, // rounded up
		{TDF{1, 1000}, 1, 1},                // a positive timeout never becomes zero
		{TDF{1, 1000}, 999, 1},
		{TDF{1, 1000}, 1001, 2},
		{TDF{10, 1}, 0, 0},
		{TDF{10, 1}, -5, -5},
		{TDF{10000, 1}, math.MaxInt64, math.MaxInt64}, // saturates
		{TDF{5, 2}, 3, 8},
	}
	for _, c := range cases {
		p := Params{TDF: c.k}
		if got := p.VirtToReal(c.in); got != c.want {
			t.Errorf("k=%v VirtToReal(%d) = %d, want %d", c.k, c.in, got, c.want)
		}
	}
	p := Params{TDF: TDF{10, 1}}
	if got := p.RealToVirt(25); got != 2 {
		t.Errorf("RealToVirt(25) at k=10 = %d, want 2 (floor)", got)
	}
	if got := p.RealToVirt(-25); got != -2 {
		t.Errorf("RealToVirt(-25) at k=10 = %d, want -2", got)
	}
	p.Paused, p.Mult = true, 0
	if got := p.VirtToReal(time.Second); got != 10*time.Second {
		t.Errorf("VirtToReal while paused = %v, want 10s (runs at k)", got)
	}
}

func TestConversionsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		k := someTDFs[r.IntN(len(someTDFs))]
		if r.IntN(2) == 0 {
			k = TDF{uint64(r.IntN(10000) + 1), uint64(r.IntN(1000) + 1)}
			g := gcd(k.Num, k.Den)
			k = TDF{k.Num / g, k.Den / g}
			if k.Validate() != nil {
				continue
			}
		}
		d := int64(r.Uint64()>>1) >> r.IntN(63)
		p := Params{TDF: k, Share: FullShare}
		if got, want := int64(p.VirtToReal(time.Duration(d))), refMulDiv(d, k.Num, k.Den, true); got != want {
			t.Fatalf("k=%v VirtToReal(%d) = %d, want %d", k, d, got, want)
		}
		if got, want := int64(p.RealToVirt(time.Duration(d))), refMulDiv(d, k.Den, k.Num, false); got != want {
			t.Fatalf("k=%v RealToVirt(%d) = %d, want %d", k, d, got, want)
		}
		// A relative timeout converted there and back never grows.
		if v := p.RealToVirt(p.VirtToReal(time.Duration(d))); d < math.MaxInt64/20000 && int64(v) < d {
			t.Fatalf("k=%v: %d -> real -> %d lost time", k, d, v)
		}
	}
}

// checkDeadline asserts that real is the earliest real reading at which
// clock id reads at least virt.
func checkDeadline(t *testing.T, p *Params, id ClockID, virt int64) {
	t.Helper()
	real, ok := p.RealDeadline(id, virt)
	if !ok {
		t.Fatalf("RealDeadline(%v, %d) not ok on a running clock", id, virt)
	}
	if real == math.MaxInt64 || real == math.MinInt64 {
		return // saturated: beyond the clock's range
	}
	if got := p.Virt(id, real); got < virt {
		t.Fatalf("RealDeadline(%v, %d) = %d reads %d: fires early", id, virt, real, got)
	}
	if got := p.Virt(id, real-1); got >= virt {
		t.Fatalf("RealDeadline(%v, %d) = %d is not the earliest: %d already reads %d", id, virt, real, real-1, got)
	}
}

func TestRealDeadline(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	f := NewFake(1e12, 1.7e18)
	for range 3000 {
		p := mustParams(t, "1", f.Now())
		p, _ = p.SetTDF(someTDFs[r.IntN(len(someTDFs))], f.Now())
		f.Advance(time.Duration(r.Int64N(1e10)))
		for _, id := range []ClockID{Realtime, Monotonic, Boottime, TAI} {
			now := p.Virt(id, f.Now()[id])
			for _, dv := range []int64{0, 1, -1, 7, 1e6, -1e6, 1e9, r.Int64N(1e12), -r.Int64N(1e12)} {
				checkDeadline(t, &p, id, now+dv)
			}
		}
	}
	p := mustParams(t, "10", f.Now())
	// Non-wall ids pass through.
	if got, ok := p.RealDeadline(ProcessCPUTime, 12345); got != 12345 || !ok {
		t.Errorf("CPU deadline converted: %d %v", got, ok)
	}
	// A paused clock: past deadlines are due now, future ones never.
	now := f.Now()
	p = p.Pause(now)
	v := p.Virt(Monotonic, now[Monotonic])
	if got, ok := p.RealDeadline(Monotonic, v-5); !ok || got > now[Monotonic] {
		t.Errorf("past deadline while paused = %d, %v; want <= now, true", got, ok)
	}
	if got, ok := p.RealDeadline(Monotonic, v); !ok || got > now[Monotonic] {
		t.Errorf("current deadline while paused = %d, %v; want <= now, true", got, ok)
	}
	if _, ok := p.RealDeadline(Monotonic, v+1); ok {
		t.Error("future deadline while paused reported reachable")
	}
	// Saturation instead of overflow.
	p = p.Resume(now)
	if got, ok := p.RealDeadline(Realtime, math.MaxInt64); !ok || got != math.MaxInt64 {
		t.Errorf("deadline at MaxInt64 = %d, %v", got, ok)
	}
}

func FuzzRealDeadline(f *testing.F) {
	f.Add(int64(0), int64(0), uint64(429496730), int64(1e9))
	f.Add(int64(-5), int64(1e18), uint64(1000<<32), int64(-1e9))
	f.Add(int64(1e9), int64(-1e9), uint64(429497), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, realBase, virtBase int64, mult uint64, virt int64) {
		if mult == 0 {
			return
		}
		p := Params{Mult: mult}
		p.Bases[Monotonic] = Base{Real: realBase, Virt: virtBase}
		real, ok := p.RealDeadline(Monotonic, virt)
		if !ok {
			t.Fatal("not ok while running")
		}
		if real == math.MaxInt64 || real == math.MinInt64 {
			return
		}
		if got := p.Virt(Monotonic, real); got < virt && got != math.MaxInt64 {
			t.Fatalf("deadline %d reads %d < %d", real, got, virt)
		}
		if got := p.Virt(Monotonic, real-1); got >= virt && got != math.MinInt64 && got != math.MaxInt64 {
			t.Fatalf("deadline %d not earliest: %d reads %d", real, real-1, got)
		}
	})
}
