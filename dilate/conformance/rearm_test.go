package conformance

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/dilate"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

// TestClockChangesReachBlockedWaits: a rate change or a pause while a
// program is blocked in a sleep or a timed wait re-arms the wait, so that
// it ends when the virtual deadline comes under the new parameters, never
// early in virtual time.
func TestClockChangesReachBlockedWaits(t *testing.T) {
	py := testutil.MustHaveCommand(t, "python3")
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatal(err)
	}
	py = strings.TrimSpace(string(out))
	waits := WaitPrograms()
	ten, _ := vclock.ParseTDF("10")
	for name, prog := range waits {
		argv := []string{py, "-c", prog}
		for _, change := range []struct {
			name     string
			apply    func(c *clock.Clock)
			wantReal func(before time.Duration) time.Duration // before: of the wait, elapsed when the change came
		}{
			// About 40 ms at k = 1, then the rest of the 100 ms at k = 10.
			{"k-1-to-10", func(c *clock.Clock) { _, _ = c.SetTDF(ten) },
				func(before time.Duration) time.Duration { return before + (100*time.Millisecond-before)*10 }},
			// About 40 ms, paused 200 ms, then the rest.
			{"pause", func(c *clock.Clock) {
				_, _ = c.Pause()
				time.Sleep(200 * time.Millisecond)
				_, _ = c.Resume()
			}, func(time.Duration) time.Duration { return 300 * time.Millisecond }},
		} {
			t.Run(name+"/"+change.name, func(t *testing.T) {
				// The change must land while the wait is blocked. If this
				// goroutine noticed "ready" so late (host load) that the
				// wait had already ended, the run measured no change: it is
				// repeated, with the same bounds, up to 3 times.
				for attempt := 1; !runBlockedWaitChange(t, argv, change.apply, change.wantReal); attempt++ {
					if attempt == 3 {
						t.Fatal("in 3 attempts the wait always ended before the change was applied")
					}
					t.Logf("attempt %d: the wait ended before the change was applied; repeating", attempt)
				}
			})
		}
	}
}

// runBlockedWaitChange runs argv (which prints "ready" with the time its
// wait starts, waits 100 ms virtual, then prints how late it woke) under a
// clock at k = 1, applies change about 40 ms into the wait, and checks that
// the wait did not end early in virtual time and took about wantReal of
// the wait's part before the change (measured from the program's own
// start reading, so the test noticing "ready" late under load does not
// count). It returns false, having checked only the first, when the wait
// had ended before the change was applied.
func runBlockedWaitChange(t *testing.T, argv []string, apply func(c *clock.Clock), wantReal func(time.Duration) time.Duration) bool {
	t.Helper()
	clock := newClock(t, "1")
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sup, err := dilate.Start(dilate.Config{Args: argv, Clock: clock, Stdout: f, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	var start int64 // the program's monotonic reading as its wait began
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b, _ := os.ReadFile(f.Name())
		if w := ParseWait(b); w.Ready {
			start = w.Start
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line in 10 s: %q", b)
		}
	}
	mono := func() time.Duration {
		now, err := linux.ClockGettime(int32(vclock.Monotonic))
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(now - start)
	}
	time.Sleep(max(0, 40*time.Millisecond-mono()))
	b, _ := os.ReadFile(f.Name())
	applied := !ParseWait(b).Ended
	before := mono()
	if applied {
		apply(clock)
	}
	if st, err := sup.Wait(); err != nil || st != (dilate.Status{}) {
		t.Fatalf("%v %v", st, err)
	}
	real := mono()
	b, _ = os.ReadFile(f.Name())
	w := ParseWait(b)
	if !w.Ready || !w.Ended {
		t.Fatalf("output %q", b)
	}
	late := float64(w.Late)
	t.Logf("woke %.3f ms late (virtual), %v real, change %v into the wait", late/1e6, real, before)
	if late < 0 {
		t.Errorf("the wait ended %.3f ms early in virtual time", -late/1e6)
	}
	if !applied || before >= 95*time.Millisecond {
		return false
	}
	want := wantReal(before)
	if real < want*9/10 || real > want*3/2 {
		t.Errorf("took %v real, want about %v", real, want)
	}
	return true
}

// TestRateChangeReachesCPUTimers: ITIMER_PROF counts virtual CPU time
// (real CPU time / s, s = share x k). Armed for 100 ms at k = 1, then k
// becomes 10 after at most 30 ms: re-armed, the timer fires after about
// 30 + 70 x 10 = 730 ms of real CPU time, not after 100 ms. (Real CPU
// time comes from /proc/self/stat, which is not dilated; the CPU-time
// clocks themselves are rescaled, not re-based, by a rate change.)
func TestRateChangeReachesCPUTimers(t *testing.T) {
	py := testutil.MustHaveCommand(t, "python3")
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatal(err)
	}
	script := `import os, signal
def cpu():
    f = open('/proc/self/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000 // os.sysconf('SC_CLK_TCK')
fired = []
signal.signal(signal.SIGPROF, lambda *a: fired.append(cpu()))
print('ready', flush=True)
c = cpu()
signal.setitimer(signal.ITIMER_PROF, 0.1)
while not fired:
    pass
print('cpu', fired[0] - c, flush=True)`
	clock := newClock(t, "1")
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sup, err := dilate.Start(dilate.Config{Args: []string{strings.TrimSpace(string(out)), "-c", script}, Clock: clock, Stdout: f, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if b, _ := os.ReadFile(f.Name()); strings.HasPrefix(string(b), "ready") || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(30 * time.Millisecond)
	ten, _ := vclock.ParseTDF("10")
	if _, err := clock.SetTDF(ten); err != nil {
		t.Fatal(err)
	}
	if st, err := sup.Wait(); err != nil || st != (dilate.Status{}) {
		t.Fatalf("%v %v", st, err)
	}
	b, _ := os.ReadFile(f.Name())
	fs := strings.Fields(string(b))
	if len(fs) < 3 || fs[1] != "cpu" {
		t.Fatalf("output %q", b)
	}
	ms, err := strconv.Atoi(fs[2])
	if err != nil {
		t.Fatalf("output %q", b)
	}
	t.Logf("SIGPROF after %d ms of real CPU time", ms)
	if ms < 500 || ms > 1100 {
		t.Errorf("SIGPROF after %d ms of real CPU time, want about 730 (100 without re-arming)", ms)
	}
}
