package netd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

var (
	vmuxOnce sync.Once
	vmuxExe  string
	vmuxErr  error
)

// vmuxBinary builds cmd/vmux (without -race): dilated nodes launch their
// programs through `vmux run`, which only the real binary has.
func vmuxBinary(t testing.TB) string {
	t.Helper()
	vmuxOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			vmuxErr = fmt.Errorf("build vmux: the go command is not in PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "vmux-netd-test")
		if err != nil {
			vmuxErr = err
			return
		}
		vmuxExe = filepath.Join(dir, "vmux")
		if out, err := exec.Command(goBin, "build", "-o", vmuxExe, "../../cmd/vmux").CombinedOutput(); err != nil {
			vmuxErr = fmt.Errorf("build vmux: %v\n%s", err, out)
		}
	})
	if vmuxErr != nil {
		t.Fatal(vmuxErr)
	}
	return vmuxExe
}

// TestDilatedExperiment: with Dilate, every node process runs under `vmux
// run` at the TDF on one virtual clock started with the experiment; then
// the network, applied at TDF-scaled real parameters, looks like the spec
// again in the nodes' time: the RTT the links add is the configured one.
func TestDilatedExperiment(t *testing.T) {
	testutil.MustHaveCommand(t, "ping")
	spec := strings.Replace(strings.ReplaceAll(rttSpec, "2ms", "1ms"), "\nnodes:", "\ntdf: 2\nnodes:", 1)
	st := upWith(t, spec, UpOptions{Exe: vmuxBinary(t), Dilate: true})
	if st.Launcher == "" {
		t.Fatal("state does not record the dilating launcher")
	}
	// The clock: a 0.5 s sleep lasts 1 s of real time, and the node's now
	// is the experiment's virtual time.
	t0 := time.Now()
	out, errs, es := execIn(t, st, "a", "sh", "-c", "date +%s.%N; sleep 0.5; date +%s.%N")
	wall := time.Since(t0)
	f := strings.Fields(out)
	if es.Code != 0 || len(f) != 2 {
		t.Fatalf("clock probe: %q %q %+v", out, errs, es)
	}
	v0, _ := strconv.ParseFloat(f[0], 64)
	v1, _ := strconv.ParseFloat(f[1], 64)
	if d := v1 - v0; d < 0.5 || d > 0.6 {
		t.Errorf("sleep 0.5 took %.3f s of virtual time, want 0.5-0.6", d)
	}
	if wall < time.Second {
		t.Errorf("sleep 0.5 at tdf 2 took %v of real time, want >= 1 s", wall)
	}
	out, _, _ = execIn(t, st, "b", "date", "+%s.%N")
	now := time.Now()
	vb, _ := strconv.ParseFloat(strings.TrimSpace(out), 64)
	want := float64(st.Created.UnixNano())/1e9 + now.Sub(st.Created).Seconds()/2
	if d := vb - want; d < -0.1 || d > 0.05 {
		t.Errorf("node b reads %.3f, want the experiment's virtual time %.3f (off %.3f s)", vb, want, d)
	}
	// The network in virtual time: 1 ms links applied as 2 ms; ping -U
	// times with the (dilated) clock, not with kernel timestamps, which
	// are not dilated.
	for try := 1; ; try++ {
		var base []time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			out, _, _, err := tryExec(t, st, "z1", "ping", "-U", "-n", "-c", "40", "-i", "0.05", "z2")
			if err != nil {
				t.Error(err)
			}
			base = parseRTTs(out)
		}()
		out, _, _ := execIn(t, st, "a", "ping", "-U", "-n", "-c", "40", "-i", "0.05", "b")
		<-done
		rtts := parseRTTs(out)
		if len(rtts) < 38 || len(base) < 38 {
			t.Fatalf("%d and %d of 40 pings answered", len(rtts), len(base))
		}
		got, zero := median(rtts), median(base)
		wantRTT := 4 * time.Millisecond
		tol := max(time.Duration(0.02*float64(wantRTT)), 200*time.Microsecond)
		t.Logf("round %d: virtual median RTT %v, zero-latency %v, added %v (configured %v +- %v)", try, got, zero, got-zero, wantRTT, tol)
		if d := got - zero - wantRTT; d >= -tol && d <= tol {
			break
		}
		if try == 3 {
			t.Fatalf("links added %v of virtual RTT, want %v +- %v (3 rounds)", got-zero, wantRTT, tol)
		}
	}
}
