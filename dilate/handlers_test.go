package dilate

import (
	"math"
	"testing"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/vclock"
)

func params(t *testing.T, k string) vclock.Params {
	t.Helper()
	tdf, err := vclock.ParseTDF(k)
	if err != nil {
		t.Fatal(err)
	}
	p, err := vclock.NewParams(vclock.Config{TDF: tdf}, vclock.Now{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMillisecondTimeouts: poll/epoll timeouts scale x k, round up, never
// become 0 when positive, and saturate at INT_MAX.
func TestMillisecondTimeouts(t *testing.T) {
	for _, tc := range []struct {
		k      string
		ms     int32
		wantMs int64
	}{
		{"10", 3, 30},
		{"0.5", 3, 2},    // 1.5 ms rounds up
		{"1/1000", 1, 1}, // 1 us rounds up to 1 ms, never 0
		{"1/1000", 1500, 2},
		{"10000", math.MaxInt32 / 2, math.MaxInt32},
	} {
		c := &call{p: params(t, tc.k)}
		regs := &linux.Regs{R10: uint64(uint32(tc.ms))}
		need, err := msTimeout(3)(nil, nil, c, regs)
		if err != nil || !need {
			t.Fatalf("k=%s ms=%d: need=%v err=%v", tc.k, tc.ms, need, err)
		}
		if int64(regs.R10) != tc.wantMs {
			t.Errorf("k=%s: %d ms virtual became %d ms real, want %d", tc.k, tc.ms, regs.R10, tc.wantMs)
		}
		if !c.noExit {
			t.Errorf("k=%s: a register timeout should not need the exit stop", tc.k)
		}
	}
	// Zero and negative (infinite) timeouts are left alone.
	for _, ms := range []int32{0, -1} {
		regs := &linux.Regs{R10: uint64(uint32(ms))}
		if need, _ := msTimeout(3)(nil, nil, &call{p: params(t, "10")}, regs); need || regs.R10 != uint64(uint32(ms)) {
			t.Errorf("timeout %d was rewritten to %d", ms, int32(regs.R10))
		}
	}
}

func TestItimerClocks(t *testing.T) {
	p := params(t, "10")
	for which, wantOK := range map[int32]bool{itimerReal: true, itimerVirtual: true, itimerProf: true, 3: false, -1: false} {
		if _, _, ok := itimerConvs(&p, which); ok != wantOK {
			t.Errorf("itimer %d: ok=%v, want %v", which, ok, wantOK)
		}
	}
	to, back, _ := itimerConvs(&p, itimerReal)
	if to(1) != 10 || back(10) != 1 {
		t.Errorf("ITIMER_REAL: 1 ns -> %d, 10 ns back -> %d", to(1), back(10))
	}
}
