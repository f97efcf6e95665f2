package conformance

import (
	"os/exec"

	"github.com/vmux/vmux/dilate"
	"path/filepath"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

func TestGlibcC(t *testing.T) {
	gcc := testutil.MustHaveCommand(t, "gcc")
	bin := filepath.Join(t.TempDir(), "conf")
	out, err := exec.Command(gcc, "-O2", "-o", bin, "testdata/conf.c", "-lpthread").CombinedOutput()
	if err != nil {
		t.Fatalf("building conf.c: %v\n%s", err, out)
	}
	for _, c := range tdfs {
		t.Run("tdf="+c.k, func(t *testing.T) { runConformance(t, c.k, c.d, 24, bin) })
	}
}

// TestOnlyTimeSyscallsTraced: futex wakes and waits without a timeout,
// zero-timeout polls and vDSO clock reads never stop at the filter.
func TestOnlyTimeSyscallsTraced(t *testing.T) {
	gcc := testutil.MustHaveCommand(t, "gcc")
	bin := filepath.Join(t.TempDir(), "bench")
	if out, err := exec.Command(gcc, "-O2", "-o", bin, "testdata/bench.c", "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("building bench.c: %v\n%s", err, out)
	}
	clock := newClock(t, "10")
	sup, err := dilate.Start(dilate.Config{Args: []string{bin, "quiet", "5000"}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := sup.Wait(); err != nil || st != (dilate.Status{}) {
		t.Fatalf("%v %v", st, err)
	}
	var total uint64
	for name, n := range sup.Stops() {
		t.Logf("%s: %d stops", name, n)
		total += n
	}
	// A few stops come from the program's start-up, none per iteration.
	if total > 50 {
		t.Errorf("%d seccomp stops for 25000 untraced calls", total)
	}
}
