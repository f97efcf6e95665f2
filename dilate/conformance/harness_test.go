package conformance

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/dilate"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

// step is one B/E pair as observed.
type step struct {
	name       string
	begin, end time.Time
	virt, want int64
}

// tdfs are the factors every program runs under, with the virtual step
// duration each uses (short at k = 10 so runs stay quick; long enough at
// k = 0.5 that 10% exceeds timestamp jitter).
var tdfs = []struct {
	k string
	d time.Duration
}{
	{"10", 20 * time.Millisecond},
	{"0.5", 100 * time.Millisecond},
}

// attempts bounds how often the program is run again while some step is
// out of its real-time bounds: the machine is shared (CI runs other
// packages' tests on the same two cores), and a tracee or the supervisor
// descheduled for tens of ms overshoots any step. Every step must be
// within bounds in at least one run. A step that ends early in virtual
// time, a failed internal check, or a bad exit is a bug and fails at once.
const attempts = 5

// runConformance runs argv (with the step durations appended) dilated at
// k and checks every reported step.
func runConformance(t *testing.T, k string, d time.Duration, minSteps int, argv ...string) {
	t.Helper()
	var pending map[string]bool
	for i := 1; ; i++ {
		late, all := runOnce(t, k, d, minSteps, argv...)
		if t.Failed() {
			return
		}
		if pending == nil {
			pending = map[string]bool{}
			for _, n := range all {
				pending[n] = true
			}
		}
		for _, n := range all {
			if !late[n] {
				delete(pending, n)
			}
		}
		if len(pending) == 0 {
			return
		}
		if i == attempts {
			t.Errorf("k=%s: steps out of bounds in all %d runs: %v", k, attempts, keys(pending))
			return
		}
		t.Logf("k=%s run %d: still out of bounds (CPU contention?): %v; running again", k, i, keys(pending))
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// runOnce runs the program once; hard failures are reported on t. It
// returns the steps out of their real-time bounds, and all steps seen.
func runOnce(t *testing.T, k string, d time.Duration, minSteps int, argv ...string) (late map[string]bool, all []string) {
	t.Helper()
	tdf, err := vclock.ParseTDF(k)
	if err != nil {
		t.Fatal(err)
	}
	clock, err := clock.New("", vclock.Config{TDF: tdf})
	if err != nil {
		t.Fatal(err)
	}
	defer clock.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The second argument is a step duration for timeouts the kernel keeps
	// in jiffies (4 ms): 200 ms real, so that a jiffy stays within 10%.
	j := max(d, time.Duration(float64(200*time.Millisecond)/tdf.Float64()))
	args := append(argv[:len(argv):len(argv)], strconv.FormatInt(int64(d), 10), strconv.FormatInt(int64(j), 10))
	sup, err := dilate.Start(dilate.Config{Args: args, Clock: clock, Stdout: w, Stderr: os.Stderr})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	steps, fails, lateChecks := readSteps(r)
	st, err := sup.Wait()
	if err != nil {
		t.Fatalf("supervisor: %v", err)
	}
	if st != (dilate.Status{}) {
		t.Errorf("program ended with %v, want exit status 0", st)
	}
	for _, f := range fails {
		t.Errorf("internal check failed: %s", f)
	}
	if len(steps) < minSteps {
		t.Errorf("got %d complete steps, want at least %d", len(steps), minSteps)
	}
	kf := tdf.Float64()
	for _, s := range steps {
		wantReal := time.Duration(float64(s.want) * kf)
		tol := max(wantReal/10, 5*time.Millisecond)
		real := s.end.Sub(s.begin)
		virtTol := int64(float64(tol) / kf)
		early := s.virt < s.want-1000 // 1 us for the clock reads' rounding
		ok := !early && real >= wantReal-tol && real <= wantReal+tol && s.virt <= s.want+virtTol &&
			len(lateChecks[s.name]) == 0
		for _, l := range lateChecks[s.name] {
			t.Logf("k=%s %s: check failed (retried): %s", k, s.name, l)
		}
		t.Logf("k=%s %-36s virtual %8.3f ms (want %8.3f)  real %8.3f ms (want %8.3f ± %.3f) %s",
			k, s.name, ms(s.virt), ms(s.want), ms(int64(real)), ms(int64(wantReal)), ms(int64(tol)), okStr(ok))
		switch {
		case early:
			t.Errorf("k=%s step %s ended early in virtual time: %d ns < %d ns", k, s.name, s.virt, s.want)
		case !ok:
			if late == nil {
				late = map[string]bool{}
			}
			late[s.name] = true
		}
		all = append(all, s.name)
	}
	return late, all
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func okStr(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

// rawReader reads a pipe with blocking read(2) on a locked OS thread, so
// that a line is timestamped when the kernel wakes the reader, not when
// the Go scheduler gets around to the netpoller.
type rawReader struct{ fd int }

func (r rawReader) Read(b []byte) (int, error) {
	for {
		n, err := syscall.Read(r.fd, b)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// readSteps timestamps the program's B/E lines as they arrive. It also
// returns the failed checks (F) and, by step, the contention-sensitive
// checks that failed (L).
func readSteps(r *os.File) ([]step, []string, map[string][]string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var steps []step
	var fails []string
	lateChecks := map[string][]string{}
	open := map[string]time.Time{}
	sc := bufio.NewScanner(rawReader{int(r.Fd())}) // Fd makes it blocking
	for sc.Scan() {
		now := time.Now()
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "B" && len(f) == 2:
			open[f[1]] = now
		case f[0] == "E" && len(f) == 4:
			b, ok := open[f[1]]
			virt, err1 := strconv.ParseInt(f[2], 10, 64)
			want, err2 := strconv.ParseInt(f[3], 10, 64)
			if !ok || err1 != nil || err2 != nil {
				fails = append(fails, "malformed line: "+sc.Text())
				continue
			}
			steps = append(steps, step{name: f[1], begin: b, end: now, virt: virt, want: want})
		case f[0] == "F":
			fails = append(fails, strings.Join(f[1:], " "))
		case f[0] == "L" && len(f) >= 2:
			lateChecks[f[1]] = append(lateChecks[f[1]], strings.Join(f[2:], " "))
		default:
			fails = append(fails, fmt.Sprintf("unexpected output %q", sc.Text()))
		}
	}
	return steps, fails, lateChecks
}

// newClock makes a run clock at k, closed when the test ends.
func newClock(t testing.TB, k string) *clock.Clock {
	t.Helper()
	tdf, err := vclock.ParseTDF(k)
	if err != nil {
		t.Fatal(err)
	}
	clock, err := clock.New("", vclock.Config{TDF: tdf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clock.Close() })
	return clock
}
