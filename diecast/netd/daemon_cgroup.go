package netd

import (
	"fmt"
	"runtime/debug"

	"github.com/vmux/vmux/diecast/node"
)

// DaemonCgroup is the name of the experiment daemon's own cgroup under
// vmux/<experiment>/ in each hierarchy it joins (a name no node can have).
const DaemonCgroup = "_netd"

// DaemonMemory is the daemon's memory limit: the emulator's packet memory
// (netem.DefaultMaxInFlight) plus every node's TUN buffers, the Go runtime
// and headroom for the garbage collector. Before it had one, the daemon ran
// in no cgroup of the experiment at all, and its delay line was the one
// place where a node could make the host run out of memory.
const DaemonMemory = 1 << 30

// daemonGCLimit is the Go heap the daemon's collector aims under: well
// inside DaemonMemory, so that the collector, not the OOM killer, reacts
// first.
const daemonGCLimit = DaemonMemory * 3 / 4

// enterDaemonCgroup moves the calling daemon into its memory-limited
// cgroup before it starts anything. Node inits it forks leave for their
// own cgroups at once (node.Start).
func enterDaemonCgroup(name string) (*node.ServiceCgroup, error) {
	cg, err := node.NewServiceCgroup(name, DaemonCgroup, DaemonMemory)
	if err != nil {
		return nil, fmt.Errorf("create daemon cgroup: %w", err)
	}
	if err := cg.Join(); err != nil {
		_ = cg.Destroy()
		return nil, fmt.Errorf("join daemon cgroup: %w", err)
	}
	debug.SetMemoryLimit(daemonGCLimit)
	return cg, nil
}
