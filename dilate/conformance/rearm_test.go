package conformance

import (
	"os"
	"os/exec"
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
	py := testutil.MustHaveCommand(t, "python3")
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatal(err)
	}
	py = strings.TrimSpace(string(out))
	// Each program prints "ready", waits 100 ms virtual once, and prints
	// how late (ns, virtual) it woke; negative is early.
	const prelude = "import ctypes, os, select, signal, threading, time\n" +
		"class TS(ctypes.Structure): _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]\n" +
		"class ITS(ctypes.Structure): _fields_ = [('i', TS), ('v', TS)]\n" +
		"libc = ctypes.CDLL(None)\n" +
		"signal.signal(signal.SIGALRM, lambda *a: None)\n" +
		"def tfd(interval, value, n):\n" +
		"    fd = libc.timerfd_create(1, 0)\n" +
		"    libc.timerfd_settime(fd, 0, ctypes.byref(ITS(TS(0, interval), TS(0, value))), None)\n" +
		"    got = 0\n" +
		"    while got < n: got += int.from_bytes(os.read(fd, 8), 'little')\n" +
		"print('ready', flush=True); t = time.monotonic_ns()\n"
	const report = "\nprint('late', time.monotonic_ns() - t - 100000000, flush=True)"
	waits := map[string]string{
		"nanosleep-relative":  "libc.nanosleep(ctypes.byref(TS(0, 100000000)), None)",
		"clock_nanosleep-abs": "time.sleep(0.1)",
		"futex-abs":           "threading.Event().wait(0.1)",
		"select":              "select.select([], [], [], 0.1)",
		"poll":                "select.poll().poll(100)",
		"timerfd-oneshot":     "tfd(0, 100000000, 1)",
		"timerfd-periodic":    "tfd(25000000, 25000000, 4)",
		"setitimer":           "signal.setitimer(signal.ITIMER_REAL, 0.1); signal.pause()",
	}
	ten, _ := vclock.ParseTDF("10")
	for name, wait := range waits {
		argv := []string{py, "-c", prelude + wait + report}
		for _, change := range []struct {
			name     string
			apply    func(c *vdso.Clock)
			wantReal time.Duration
		}{
			// 40 ms at k = 1, then 60 ms virtual at k = 10.
			{"k-1-to-10", func(c *vdso.Clock) { _, _ = c.SetTDF(ten) }, 640 * time.Millisecond},
			// 40 ms, paused 200 ms, then the other 60 ms.
			{"pause", func(c *vdso.Clock) {
				_, _ = c.Pause()
				time.Sleep(200 * time.Millisecond)
				_, _ = c.Resume()
			}, 300 * time.Millisecond},
		} {
			t.Run(name+"/"+change.name, func(t *testing.T) {
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
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
					if b, _ := os.ReadFile(f.Name()); strings.HasPrefix(string(b), "ready") || time.Now().After(deadline) {
						break
					}
				}
				start := time.Now()
				time.Sleep(40 * time.Millisecond)
				change.apply(clock)
				if st, err := sup.Wait(); err != nil || st != (dilate.Status{}) {
					t.Fatalf("%v %v", st, err)
				}
				real := time.Since(start)
				b, _ := os.ReadFile(f.Name())
				fs := strings.Fields(string(b))
				if len(fs) < 3 || fs[0] != "ready" || fs[1] != "late" {
					t.Fatalf("output %q", b)
				}
				late, err := strconv.ParseFloat(fs[2], 64)
				if err != nil {
					t.Fatalf("output %q", b)
				}
				t.Logf("woke %.3f ms late (virtual), %v real", late/1e6, real)
				if late < 0 {
					t.Errorf("the wait ended %.3f ms early in virtual time", -late/1e6)
				}
				if real < change.wantReal*9/10 || real > change.wantReal*3/2 {
					t.Errorf("took %v real, want about %v", real, change.wantReal)
				}
			})
		}
	}
}
