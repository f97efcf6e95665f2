package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/dilate"
	"github.com/vmux/vmux/dilate/vdso"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/vclock"
)

// TestClockChangesReachBlockedWaits: a rate change or a pause while a
// program is blocked in a sleep or a timed wait re-arms the wait, so that
// it ends when the virtual deadline comes under the new parameters, never
// early in virtual time.
func TestClockChangesReachBlockedWaits(t *testing.T) {
	gcc := testutil.MustHaveCommand(t, "gcc")
	bin := filepath.Join(t.TempDir(), "bench")
	if out, err := exec.Command(gcc, "-O2", "-o", bin, "testdata/bench.c", "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("building bench.c: %v\n%s", err, out)
	}
	py := testutil.MustHaveCommand(t, "python3")
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatal(err)
	}
	py = strings.TrimSpace(string(out))
	// Each program waits 200 ms virtual once and prints how late (ns,
	// virtual) it woke; negative is early.
	progs := map[string][]string{
		"nanosleep-relative": {bin, "sleep", "1", "200000"},
		"python-sleep-abs": {py, "-c", `import time
t = time.monotonic_ns(); time.sleep(0.2); print("sleep", time.monotonic_ns() - t - 200000000)`},
		"python-event-futex": {py, "-c", `import threading, time
t = time.monotonic_ns(); threading.Event().wait(0.2); print("sleep", time.monotonic_ns() - t - 200000000)`},
	}
	ten, _ := vclock.ParseTDF("10")
	for name, argv := range progs {
		for _, change := range []struct {
			name     string
			apply    func(c *vdso.Clock)
			wantReal time.Duration
		}{
			// 50 ms at k = 1, then 150 ms virtual at k = 10.
			{"k-1-to-10", func(c *vdso.Clock) { _, _ = c.SetTDF(ten) }, 1550 * time.Millisecond},
			// 50 ms, paused 300 ms, then the other 150 ms.
			{"pause", func(c *vdso.Clock) {
				_, _ = c.Pause()
				time.Sleep(300 * time.Millisecond)
				_, _ = c.Resume()
			}, 500 * time.Millisecond},
		} {
			t.Run(name+"/"+change.name, func(t *testing.T) {
				clock := newClock(t, "1")
				f, err := os.CreateTemp(t.TempDir(), "out")
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				start := time.Now()
				sup, err := dilate.Start(dilate.Config{Args: argv, Clock: clock, Stdout: f, Stderr: os.Stderr})
				if err != nil {
					t.Fatal(err)
				}
				// Programs start in well under 50 ms at k = 1 on an idle
				// machine; the wait is long enough either way.
				time.Sleep(50 * time.Millisecond)
				change.apply(clock)
				if st, err := sup.Wait(); err != nil || st != (dilate.Status{}) {
					t.Fatalf("%v %v", st, err)
				}
				real := time.Since(start)
				b, _ := os.ReadFile(f.Name())
				fs := strings.Fields(string(b))
				if len(fs) < 2 {
					t.Fatalf("output %q", b)
				}
				late, err := strconv.ParseFloat(fs[1], 64)
				if err != nil {
					t.Fatalf("output %q", b)
				}
				t.Logf("woke %.3f ms late (virtual), %v real", late/1e6, real)
				if late < 0 {
					t.Errorf("the wait ended %.3f ms early in virtual time", -late/1e6)
				}
				if real < change.wantReal*9/10 || real > change.wantReal*3/2+300*time.Millisecond {
					t.Errorf("took %v real, want about %v", real, change.wantReal)
				}
			})
		}
	}
}
