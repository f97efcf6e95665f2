package cast

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/internal/testutil"
)

var (
	vmuxOnce sync.Once
	vmuxExe  string
	vmuxErr  error
)

// vmuxBinary builds cmd/vmux without -race: the daemon, node inits and
// dilation supervisors run as the real binary, at production speed.
func vmuxBinary(t testing.TB) string {
	t.Helper()
	vmuxOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			vmuxErr = fmt.Errorf("build vmux: the go command is not in PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "vmux-cast-test")
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

// loadSpec writes spec (with %s for a unique experiment name) and loads
// it; scratch is the directory runs must make their scratch in (checked
// empty at the end).
func loadSpec(t *testing.T, spec string) (*Experiment, string) {
	t.Helper()
	testutil.MustRoot(t)
	name := fmt.Sprintf("c%d-%s", os.Getpid()%100000, strings.ToLower(strings.TrimPrefix(t.Name(), "Test")))
	if len(name) > 32 {
		name = name[:32]
	}
	p := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(spec, name)), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	t.Cleanup(func() { checkGone(t, name, scratch) })
	return e, scratch
}

// checkGone asserts that no trace of experiment name is left.
func checkGone(t *testing.T, name, scratch string) {
	t.Helper()
	if _, err := os.Stat(netd.Dir(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run dir %s left (%v)", netd.Dir(name), err)
		_ = netd.Down(name, time.Second)
	}
	if left := testutil.CgroupDirsNamed("vmux/" + name); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if left, _ := os.ReadDir(scratch); len(left) > 0 {
		t.Errorf("scratch dirs left in %s: %v", scratch, left)
	}
}

// runSpec is a redis server with port readiness, a benchmark after it, and
// a sleep job whose completion time is known in virtual time.
const runSpec = `name: %s
nodes:
  srv: {cpu: 0.5}
  cli: {cpu: 0.5}
links:
  - {ends: [srv, cli], bandwidth: 100Mbit, latency: 1ms}
workload:
  services:
    redis:
      node: srv
      command: [redis-server, --port, "7379", --protected-mode, "no", --save, "", --appendonly, "no"]
      ready: {port: 7379, timeout: 20s}
  jobs:
    bench:
      node: cli
      after: [redis]
      command: [redis-benchmark, -h, srv, -p, "7379", -c, "2", -n, "500", -t, set, --csv]
      metrics: redis-benchmark
    nap:
      node: cli
      after: [bench]
      start: 200ms
      repeat: 2
      command: 'sleep 0.3; echo "{\"metric\": \"napped\", \"value\": 1, \"unit\": \"count\"}"'
      metrics: json
`

// TestRunModes runs the three modes at k=2 and checks what each recorded:
// the redis benchmark's samples, the sleep job's completion time in
// virtual time (0.3 s of sleep is 0.3 s virtual in every mode, and lasts
// 0.6 s real when dilated), the start offset, and a report over them.
func TestRunModes(t *testing.T) {
	testutil.MustHaveCommand(t, "redis-server")
	testutil.MustHaveCommand(t, "redis-benchmark")
	e, scratch := loadSpec(t, runSpec)
	dir := filepath.Join(t.TempDir(), "results")
	modes, _ := Plan(nil, []float64{2})
	var phases []string
	res, err := Run(context.Background(), e, Options{Modes: modes, Dir: dir, Exe: vmuxBinary(t), ScratchDir: scratch,
		Progress: func(p Progress) { phases = append(phases, p.Phase) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d runs, want 3", len(res))
	}
	for _, r := range res {
		if r.Error != "" {
			t.Fatalf("%v: %s", r.Mode, r.Error)
		}
		var naps []Execution
		var bench *Execution
		for i, x := range r.Executions {
			switch x.Item {
			case "nap":
				naps = append(naps, x)
			case "bench":
				bench = &r.Executions[i]
			}
		}
		if len(naps) != 2 || bench == nil {
			t.Fatalf("%v: executions %+v", r.Mode, r.Executions)
		}
		for _, x := range naps {
			if d := x.End - x.Start; d < 0.3 || d > 0.45 {
				t.Errorf("%v: sleep 0.3 took %.3f s of virtual time, want 0.3-0.45", r.Mode, d)
			}
		}
		if gap := naps[0].Start - bench.End; gap < 0.2 || gap > 0.3 {
			t.Errorf("%v: nap started %.3f s (virtual) after bench, want its 200ms offset", r.Mode, gap)
		}
		if r.Mode.Dilated() && r.RealSeconds < 1.8*r.VirtualSeconds {
			t.Errorf("%v: %.2f s real for %.2f s virtual: not dilated", r.Mode, r.RealSeconds, r.VirtualSeconds)
		}
		if r.Keepup.Samples == 0 {
			t.Errorf("%v: no keep-up samples", r.Mode)
		}
		// scaled mode's TCP: the initial RTO at k x 1 s in every node
		rtos := 0
		for _, a := range r.TCP {
			if strings.HasSuffix(a, fmt.Sprintf(": initial_rto=%v", time.Duration(r.Mode.TDF*float64(time.Second)))) {
				rtos++
			}
		}
		if want := map[bool]int{true: 2}[r.Mode.Dilated()]; rtos != want {
			t.Errorf("%v: initial RTO scaled in %d nodes, want %d: %q", r.Mode, rtos, want, r.TCP)
		}
	}
	rep, err := LoadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep.Modes {
		if s := m.Metrics["bench.SET.rps"]; s.N != 1 || !(s.Mean > 0) {
			t.Errorf("%s: bench.SET.rps %+v", m.Mode, s)
		}
		if s := m.Metrics["nap.napped"]; s.N != 2 {
			t.Errorf("%s: nap.napped %+v", m.Mode, s)
		}
		if s := m.Metrics["nap.completion"]; s.N != 2 || s.Mean < 0.3 || s.Mean > 0.45 {
			t.Errorf("%s: nap.completion %+v", m.Mode, s)
		}
		if s := m.Metrics["redis.ready"]; s.N != 1 {
			t.Errorf("%s: redis.ready %+v", m.Mode, s)
		}
	}
	if len(rep.Fidelity) == 0 {
		t.Error("no fidelity rows")
	}
	if !strings.Contains(strings.Join(phases, " "), "up run") || phases[len(phases)-1] != "done" {
		t.Errorf("progress phases %v", phases)
	}
}

// TestRunCancel: cancelling a run in the middle of a long job tears the
// experiment down and returns at once.
func TestRunCancel(t *testing.T) {
	e, scratch := loadSpec(t, `name: %s
nodes: {a: {}, b: {}}
links: [{ends: [a, b]}]
workload:
  jobs:
    long: {node: a, command: "sleep 300"}
`)
	ctx, cancel := context.WithCancel(context.Background())
	dir := filepath.Join(t.TempDir(), "results")
	done := make(chan error, 1)
	var once sync.Once
	go func() {
		_, err := Run(ctx, e, Options{Modes: []Mode{{Kind: Baseline, TDF: 1}}, Dir: dir, Exe: vmuxBinary(t), ScratchDir: scratch,
			Progress: func(p Progress) {
				if p.Phase == "run" || strings.Contains(p.Event, "bringing up") {
					once.Do(func() { time.AfterFunc(2*time.Second, cancel) })
				}
			}})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30 s after cancel")
	}
	b, err := os.ReadFile(filepath.Join(dir, runsDir, "baseline-r1", runFile))
	if err != nil || !strings.Contains(string(b), `"valid": false`) {
		t.Errorf("cancelled run not recorded as invalid: %v %s", err, b)
	}
}

// TestRunAuto: with --tdf auto and a host saturated by busy loops, the
// controller raises k through the experiment clock, and a job's virtual
// time stays right across the changes (a 4 s sleep lasts 4 s virtual
// whatever k did meanwhile).
func TestRunAuto(t *testing.T) {
	e, scratch := loadSpec(t, `name: %s
nodes: {a: {cpu: 0.5}, b: {cpu: 0.5}}
links: [{ends: [a, b], bandwidth: 100Mbit, latency: 1ms}]
workload:
  jobs:
    nap: {node: a, command: "sleep 4"}
`)
	var loops []*exec.Cmd
	for range 3 {
		c := exec.Command("sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		loops = append(loops, c)
	}
	defer func() {
		for _, c := range loops {
			c.Process.Kill()
			c.Wait()
		}
	}()
	modes, _ := Plan([]string{Scaled}, []float64{0})
	res, err := Run(context.Background(), e, Options{Modes: modes, Dir: filepath.Join(t.TempDir(), "results"), Exe: vmuxBinary(t),
		ScratchDir: scratch, AutoMax: 6})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if len(r.TDFChanges) == 0 || r.TDFChanges[0].To <= AutoStart || r.TDFChanges[len(r.TDFChanges)-1].To > 6 {
		t.Fatalf("k did not rise on a saturated host: %+v (keep-up %+v)", r.TDFChanges, r.Keepup)
	}
	if len(r.Executions) != 1 {
		t.Fatalf("executions %+v", r.Executions)
	}
	if d := r.Executions[0].End - r.Executions[0].Start; d < 4 || d > 4.5 {
		t.Errorf("sleep 4 took %.3f s virtual across k changes %+v, want 4-4.5", d, r.TDFChanges)
	}
	var kmax float64
	for _, s := range r.Timeline {
		kmax = max(kmax, s.TDF)
	}
	if kmax != r.TDFChanges[len(r.TDFChanges)-1].To && kmax < r.TDFChanges[0].To {
		t.Errorf("timeline does not show k: max %v, changes %+v", kmax, r.TDFChanges)
	}
}
