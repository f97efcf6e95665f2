package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmux/vmux/dilate"
	"github.com/vmux/vmux/internal/testutil"
)

// TestSleepsNeverEarly: the supervisor shortens a relative wait's real
// timeout by the time it spent on the stop and a probed lower bound of the
// stop's latency, and turns glibc's relative nanosleep into an absolute
// sleep; none of that may end a wait early in virtual time. A glibc
// program times 1 ms virtual waits of five kinds with its own (dilated)
// clock; the smallest error of each must not be negative, at k = 10 and
// k = 0.5.
func TestSleepsNeverEarly(t *testing.T) {
	gcc := testutil.MustHaveCommand(t, "gcc")
	bin := filepath.Join(t.TempDir(), "bench")
	if out, err := exec.Command(gcc, "-O2", "-o", bin, "testdata/bench.c", "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("building bench.c: %v\n%s", err, out)
	}
	for _, k := range []string{"10", "0.5"} {
		t.Run("tdf="+k, func(t *testing.T) {
			f, err := os.CreateTemp(t.TempDir(), "out")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sup, err := dilate.Start(dilate.Config{Args: []string{bin, "early", "25", "1000"}, Clock: newClock(t, k), Stdout: f, Stderr: os.Stderr})
			if err != nil {
				t.Fatal(err)
			}
			if st, err := sup.Wait(); err != nil || st != (dilate.Status{}) {
				t.Fatalf("%v %v", st, err)
			}
			out, _ := os.ReadFile(f.Name())
			seen := 0
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				fs := strings.Fields(line)
				if len(fs) != 4 {
					t.Fatalf("bad output line %q", line)
				}
				p50, err1 := strconv.ParseInt(fs[1], 10, 64)
				least, err2 := strconv.ParseInt(fs[3], 10, 64)
				if err1 != nil || err2 != nil {
					t.Fatalf("bad output line %q", line)
				}
				seen++
				t.Logf("%s: virtual error p50 %.1f us, min %.1f us", fs[0], float64(p50)/1e3, float64(least)/1e3)
				if least < 0 {
					t.Errorf("%s: a 1 ms virtual wait ended %.1f us early in virtual time", fs[0], float64(-least)/1e3)
				}
			}
			if seen != 5 {
				t.Fatalf("output %q: want 5 kinds of waits", out)
			}
		})
	}
}
