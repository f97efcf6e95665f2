package node

import (
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// Cgroup is one node's control group, behind one interface for the two
// kernel APIs: v1 (one hierarchy per controller, what runs on this project's
// machines) and v2 (the unified hierarchy, where a host has its controllers).
type Cgroup interface {
	// Paths are the cgroup directories, recorded in the state on disk so
	// that teardown works without this object.
	Paths() []string
	// Apply writes the limits into the controller files.
	Apply(Limits) error
	// Add moves process pid (all its threads) into the cgroup.
	Add(pid int) error
	// Spawn calls start, which forks a process with sys as its attributes,
	// so that the process is born in the cgroup: what it allocates before
	// Add could move it is charged to the node, not to its parent (a
	// moved process's memory stays charged where it was allocated).
	Spawn(sys *syscall.SysProcAttr, start func() error) error
	// CPUUsage is the CPU time consumed by the cgroup's processes so far.
	CPUUsage() (time.Duration, error)
	// Destroy kills what is left inside and removes the directories.
	Destroy() error
}

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// NewCgroup creates the cgroup of node in experiment: v2 if the host's
// unified hierarchy at /sys/fs/cgroup has cpu, memory and io, else v1.
func NewCgroup(experiment, node string) (Cgroup, error) {
	if ok, _ := haveV2(cgroupRoot); ok {
		return newV2(cgroupRoot, experiment, node)
	}
	return newV1(cgroupRoot, experiment, node)
}

// RemoveCgroups kills every process left in the cgroup directories paths,
// waits for them to empty and removes them and their empty vmux parents. It
// works from paths alone (the state on disk) and ignores ones already gone.
func RemoveCgroups(paths []string, timeout time.Duration) error {
	return removeCgroupDirs(paths, timeout)
}

// BPFCgroup returns the one of a node's cgroup directories (State.Cgroups)
// that is on a cgroup v2 file system, where cgroup BPF programs attach,
// or "" if it has none.
func BPFCgroup(paths []string) string {
	for _, p := range paths {
		if isCgroup2(p) {
			return p
		}
	}
	return ""
}

func isCgroup2(path string) bool {
	ok, err := linux.IsCgroup2(path)
	return err == nil && ok
}
