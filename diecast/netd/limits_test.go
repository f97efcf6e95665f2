package netd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/diecast/topology"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

// TestLimitsScaleWithTDF: CPU and disk rates are divided by the TDF (a node
// perceives k times more of them per second of its time), memory is not;
// the CFS period is multiplied by it, up to the kernel's 1 s.
func TestLimitsScaleWithTDF(t *testing.T) {
	nd := &topology.Node{Name: "a", CPU: 1, Memory: 256 << 20,
		Disk: topology.DiskSpec{Read: 50e6, Write: 20e6, ReadIOPS: 1000, WriteIOPS: 400}}
	for _, tc := range []struct {
		k    vclock.TDF
		want node.Limits
	}{
		{vclock.One, node.Limits{CPU: 1, Memory: 256 << 20, ReadBps: 50e6, WriteBps: 20e6, ReadIOPS: 1000, WriteIOPS: 400}},
		{vclock.TDF{Num: 4, Den: 1}, node.Limits{CPU: 0.25, Memory: 256 << 20, ReadBps: 12.5e6, WriteBps: 5e6, ReadIOPS: 250, WriteIOPS: 100, PeriodUs: 400000}},
		{vclock.TDF{Num: 10, Den: 1}, node.Limits{CPU: 0.1, Memory: 256 << 20, ReadBps: 5e6, WriteBps: 2e6, ReadIOPS: 100, WriteIOPS: 40, PeriodUs: 1000000}},
		{vclock.TDF{Num: 20, Den: 1}, node.Limits{CPU: 0.05, Memory: 256 << 20, ReadBps: 2.5e6, WriteBps: 1e6, ReadIOPS: 50, WriteIOPS: 20, PeriodUs: 1000000}},
		{vclock.TDF{Num: 1, Den: 2}, node.Limits{CPU: 2, Memory: 256 << 20, ReadBps: 100e6, WriteBps: 40e6, ReadIOPS: 2000, WriteIOPS: 800, PeriodUs: 50000}},
	} {
		got, err := Limits(nd, tc.k)
		if err != nil || got != tc.want {
			t.Errorf("tdf %v: %+v, %v; want %+v", tc.k, got, err, tc.want)
		}
	}
	// 0.005 of a core at TDF 10 is below the kernel's 1 ms quota per 1 s period.
	if _, err := Limits(&topology.Node{Name: "b", CPU: 0.005}, vclock.TDF{Num: 10, Den: 1}); !errors.Is(err, node.ErrBadConfig) {
		t.Errorf("tiny cpu share: err %v, want ErrBadConfig", err)
	}
}

// TestDilatedCPUPeriod: a dilated node's CFS period is k x 100 ms with its
// quota c/k of it (the original's quota per period, in the node's time),
// and both follow a change of k.
func TestDilatedCPUPeriod(t *testing.T) {
	st := upWith(t, "name: %s\ntdf: 4\nnodes:\n  a: {cpu: 0.5, memory: 64Mi}\n", UpOptions{Exe: fastDaemon(t), Dilate: true})
	a, err := st.Node("a")
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	for _, c := range a.Cgroups {
		if _, err := os.Stat(filepath.Join(c, "cpu.cfs_period_us")); err == nil {
			dir = c
		}
	}
	if dir == "" {
		t.Fatalf("no cpu cgroup among %v", a.Cgroups)
	}
	read := func(f string) string {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		return strings.TrimSpace(string(b))
	}
	check := func(period, quota string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for read("cpu.cfs_period_us") != period || read("cpu.cfs_quota_us") != quota {
			if time.Now().After(deadline) {
				t.Fatalf("period %s quota %s, want %s and %s", read("cpu.cfs_period_us"), read("cpu.cfs_quota_us"), period, quota)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check("400000", "50000")
	if _, err := clock.Ask(st.Name, clock.Request{Op: "set", TDF: "2"}); err != nil {
		t.Fatal(err)
	}
	check("200000", "50000")
}
