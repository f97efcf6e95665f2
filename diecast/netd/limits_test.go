package netd

import (
	"errors"
	"testing"

	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/diecast/topology"
	"github.com/vmux/vmux/rt/vclock"
)

// TestLimitsScaleWithTDF: CPU and disk rates are divided by the TDF (a node
// perceives k times more of them per second of its time), memory is not.
func TestLimitsScaleWithTDF(t *testing.T) {
	nd := &topology.Node{Name: "a", CPU: 1, Memory: 256 << 20,
		Disk: topology.DiskSpec{Read: 50e6, Write: 20e6, ReadIOPS: 1000, WriteIOPS: 400}}
	for _, tc := range []struct {
		k    vclock.TDF
		want node.Limits
	}{
		{vclock.One, node.Limits{CPU: 1, Memory: 256 << 20, ReadBps: 50e6, WriteBps: 20e6, ReadIOPS: 1000, WriteIOPS: 400}},
		{vclock.TDF{Num: 10, Den: 1}, node.Limits{CPU: 0.1, Memory: 256 << 20, ReadBps: 5e6, WriteBps: 2e6, ReadIOPS: 100, WriteIOPS: 40}},
	} {
		got, err := Limits(nd, tc.k)
		if err != nil || got != tc.want {
			t.Errorf("tdf %v: %+v, %v; want %+v", tc.k, got, err, tc.want)
		}
	}
	// 0.05 of a core at TDF 10 is below the kernel's 1 ms-per-100 ms minimum.
	if _, err := Limits(&topology.Node{Name: "b", CPU: 0.05}, vclock.TDF{Num: 10, Den: 1}); !errors.Is(err, node.ErrBadConfig) {
		t.Errorf("tiny cpu share: err %v, want ErrBadConfig", err)
	}
}
