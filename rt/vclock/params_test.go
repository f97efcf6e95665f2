package vclock

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"
)

// refScale is floor(d*m / 2^32) in big integers, saturated to int64.
func refScale(d int64, m uint64) int64 {
	x := new(big.Int).Mul(big.NewInt(d), new(big.Int).SetUint64(m))
	x.Rsh(x, 32) // Rsh on a negative big.Int floors, like an arithmetic shift
	return satBig(x)
}

func satBig(x *big.Int) int64 {
	if x.Cmp(big.NewInt(math.MaxInt64)) > 0 {
		return math.MaxInt64
	}
	if x.Cmp(big.NewInt(math.MinInt64)) < 0 {
		return math.MinInt64
	}
	return x.Int64()
}

func TestScaleMatchesReference(t *testing.T) {
	ds := []int64{0, 1, -1, 2, -2, 999, -999, 1e9, -1e9, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	ms := []uint64{0, 1, 1 << 31, 1 << 32, 429496730, 3 << 32, 1000 << 32, math.MaxUint64}
	for _, d := range ds {
		for _, m := range ms {
			if got, want := scale(d, m), refScale(d, m); got != want {
				t.Errorf("scale(%d, %d) = %d, want %d", d, m, got, want)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		d := int64(r.Uint64()) >> r.IntN(64)
		m := r.Uint64() >> r.IntN(64)
		if got, want := scale(d, m), refScale(d, m); got != want {
			t.Fatalf("scale(%d, %d) = %d, want %d", d, m, got, want)
		}
	}
}

func FuzzScale(f *testing.F) {
	f.Add(int64(1e9), uint64(429496730))
	f.Add(int64(-7), uint64(3<<32))
	f.Add(int64(math.MinInt64), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, d int64, m uint64) {
		if got, want := scale(d, m), refScale(d, m); got != want {
			t.Fatalf("scale(%d, %d) = %d, want %d", d, m, got, want)
		}
	})
}

func TestAddSubSat(t *testing.T) {
	cases := []struct{ a, b, add, sub int64 }{
		{1, 2, 3, -1},
		{math.MaxInt64, 1, math.MaxInt64, math.MaxInt64 - 1},
		{math.MinInt64, -1, math.MinInt64, math.MinInt64 + 1},
		{0, math.MinInt64, math.MinInt64, math.MaxInt64},
		{-1, math.MinInt64, math.MinInt64, math.MaxInt64},
		{-2, math.MinInt64, math.MinInt64, math.MaxInt64 - 1},
		{math.MaxInt64, math.MinInt64, -1, math.MaxInt64},
	}
	for _, c := range cases {
		if got := addSat(c.a, c.b); got != c.add {
			t.Errorf("addSat(%d, %d) = %d, want %d", c.a, c.b, got, c.add)
		}
		if got := subSat(c.a, c.b); got != c.sub {
			t.Errorf("subSat(%d, %d) = %d, want %d", c.a, c.b, got, c.sub)
		}
	}
}

func mustParams(t testing.TB, k string, now Now) Params {
	t.Helper()
	tdf, err := ParseTDF(k)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewParams(Config{TDF: tdf}, now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewParamsStartsAtReal(t *testing.T) {
	f := NewFake(5e9, 1.7e18)
	now := f.Now()
	p := mustParams(t, "10", now)
	for id := range ClockID(NumClocks) {
		if id.Kind() == KindWall && p.Virt(id, now[id]) != now[id] {
			t.Errorf("%v starts at %d, want real %d", id, p.Virt(id, now[id]), now[id])
		}
	}
	if p.Share != FullShare || p.CPUMult != p.Mult {
		t.Errorf("default share %v cpu_mult %d, want 1 and %d", p.Share, p.CPUMult, p.Mult)
	}
}

func TestNewParamsStart(t *testing.T) {
	f := NewFake(5e9, 1.7e18)
	now := f.Now()
	start := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	p, err := NewParams(Config{TDF: TDF{2, 1}, Start: start}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Virt(Realtime, now[Realtime]); got != start.UnixNano() {
		t.Errorf("REALTIME starts at %d, want %d", got, start.UnixNano())
	}
	if got, want := p.Virt(TAI, now[TAI])-p.Virt(Realtime, now[Realtime]), now[TAI]-now[Realtime]; got != want {
		t.Errorf("TAI-REALTIME offset %d, want %d kept", got, want)
	}
	if got := p.Virt(Monotonic, now[Monotonic]); got != now[Monotonic] {
		t.Errorf("MONOTONIC moved by --start: %d, want %d", got, now[Monotonic])
	}
	f.Advance(2 * time.Second)
	if got, want := p.Virt(Realtime, f.Now()[Realtime]), start.Add(time.Second).UnixNano(); got != want {
		t.Errorf("REALTIME after 2 s real at k=2: %d, want %d", got, want)
	}
}

func TestNewParamsErrors(t *testing.T) {
	if _, err := NewParams(Config{}, Now{}); err == nil {
		t.Error("NewParams without a TDF succeeded")
	}
	if _, err := NewParams(Config{TDF: One, Share: Share{2, 1}}, Now{}); err == nil {
		t.Error("NewParams with share 2 succeeded")
	}
}

func TestVirtRates(t *testing.T) {
	for _, k := range []string{"1", "10", "0.5", "1/3", "2.5", "0.001", "10000"} {
		f := NewFake(1e12, 0)
		p := mustParams(t, k, f.Now())
		tdf, _ := ParseTDF(k)
		start := p.VirtNow(f.Now())
		for _, step := range []time.Duration{time.Nanosecond, time.Microsecond, time.Second, time.Hour} {
			f.Advance(step)
		}
		real := int64(time.Nanosecond + time.Microsecond + time.Second + time.Hour)
		end := p.VirtNow(f.Now())
		want := float64(real) / tdf.Float64()
		bound := 1 + float64(real)*tdf.Float64()/math.Ldexp(1, 33)*(1/tdf.Float64()) + float64(real)/math.Ldexp(1, 32)
		for id := range ClockID(NumClocks) {
			if id.Kind() != KindWall {
				continue
			}
			if got := float64(end[id] - start[id]); math.Abs(got-want) > bound {
				t.Errorf("k=%s %v advanced %.0f ns for %d ns real, want %.0f +- %.1f", k, id, got, real, want, bound)
			}
		}
	}
}

func TestKind(t *testing.T) {
	wall := []ClockID{Realtime, Monotonic, MonotonicRaw, RealtimeCoarse, MonotonicCoarse, Boottime, RealtimeAlarm, BoottimeAlarm, TAI}
	for _, id := range wall {
		if id.Kind() != KindWall {
			t.Errorf("%v kind %v, want wall", id, id.Kind())
		}
	}
	// -6 is the per-thread SCHED clock of tid 0 (~0<<3 | 6 | ...): CPU; -5 is
	// CLOCKFD-like (low bits 3): other.
	for _, id := range []ClockID{ProcessCPUTime, ThreadCPUTime, -2, -6, (^ClockID(1234) << 3) | 2} {
		if id.Kind() != KindCPU {
			t.Errorf("%v kind %v, want CPU", id, id.Kind())
		}
	}
	for _, id := range []ClockID{10, 12, 100, -5, (^ClockID(3) << 3) | 3} {
		if id.Kind() != KindOther {
			t.Errorf("%v kind %v, want other", id, id.Kind())
		}
	}
	if Realtime.String() != "REALTIME" || TAI.String() != "TAI" || ClockID(-3).String() != "clock(-3)" {
		t.Errorf("names: %v %v %v", Realtime, TAI, ClockID(-3))
	}
}

func TestCPUScaling(t *testing.T) {
	p, err := NewParams(Config{TDF: TDF{10, 1}, Share: Share{1, 2}}, Now{})
	if err != nil {
		t.Fatal(err)
	}
	// s = 1/2 x 10 = 5: 5 s of real CPU read as 1 s.
	// Within the documented bound: 1 ns floor + 1e9 x s/2^33 (0.6 ns).
	if got := p.Virt(ProcessCPUTime, 5e9); got < 1e9-2 || got > 1e9 {
		t.Errorf("CPU 5 s real at s=5 reads %d, want 1e9 - <2 ns", got)
	}
	if got := p.Virt(-6, 5e9); got < 1e9-2 || got > 1e9 {
		t.Errorf("thread CPU clock 5 s real reads %d, want 1e9 - <2 ns", got)
	}
	if got := p.CPUVirtToReal(time.Second); got != 5*time.Second {
		t.Errorf("CPUVirtToReal(1s) = %v, want 5s", got)
	}
	if got := p.CPURealToVirt(5 * time.Second); got != time.Second {
		t.Errorf("CPURealToVirt(5s) = %v, want 1s", got)
	}
	if got := p.CPURealToVirt(-5 * time.Second); got != -time.Second {
		t.Errorf("CPURealToVirt(-5s) = %v, want -1s", got)
	}
	if got := p.Virt(10, 12345); got != 12345 {
		t.Errorf("unknown clock id changed: %d", got)
	}
}
