package dilate

import (
	"math"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
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
		need, err := msTimeout(3)(plainTracer(), nil, c, regs)
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
		if need, _ := msTimeout(3)(plainTracer(), nil, &call{p: params(t, "10")}, regs); need || regs.R10 != uint64(uint32(ms)) {
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

// plainTracer converts timeouts without the wake-up compensation.
func plainTracer() *tracer {
	return &tracer{s: &Supervisor{cfg: Config{PlainSleeps: true}}}
}

// A relative wait's real timeout counts from the supervisor's wake minus
// the stop lead, and a positive timeout never becomes zero.
func TestRelSleepCountsFromWake(t *testing.T) {
	p := params(t, "10")
	tr := &tracer{s: &Supervisor{}, woke: time.Now().Add(-2 * time.Millisecond), stopLead: 10 * time.Microsecond}
	before := time.Now()
	got := time.Duration(tr.relSleep(&p)(int64(time.Millisecond)))
	spent := time.Since(tr.woke)
	// 10 ms real, less at least the 2 ms since the wake and the lead, and
	// less at most what had passed when it was converted.
	if hi, lo := 10*time.Millisecond-before.Sub(tr.woke)-tr.stopLead, 10*time.Millisecond-spent-tr.stopLead; got > hi || got < lo {
		t.Errorf("1 ms virtual at k=10 became %v real, want within [%v, %v]", got, lo, hi)
	}
	tr.woke = time.Now().Add(-time.Second)
	if got := tr.relSleep(&p)(1); got != 1 {
		t.Errorf("a timeout already over became %d ns, want 1", got)
	}
	if got := tr.relSleep(&p)(0); got != 0 {
		t.Errorf("a zero timeout became %d ns", got)
	}
	p.Paused = true
	if got := tr.relSleep(&p)(1); got != pausedWait {
		t.Errorf("a wait entered while paused became %d ns, want pausedWait", got)
	}
}
