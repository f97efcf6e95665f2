package node

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// v1Controllers are the hierarchies a node joins. cpuacct gives CPU usage;
// on hosts that co-mount "cpu,cpuacct" both names resolve to one directory.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "blkio", "pids"}

type cgroupV1 struct {
	dirs map[string]string // controller -> cgroup dir
	all  []string          // distinct dirs, in creation order
	rel  string            // <experiment>/<node>, under each hierarchy's vmux
}

func newV1(root, experiment, node string) (*cgroupV1, error) {
	cg := &cgroupV1{dirs: map[string]string{}, rel: filepath.Join(experiment, node)}
	seen := map[string]string{}
	for _, ctrl := range v1Controllers {
		mnt, err := filepath.EvalSymlinks(filepath.Join(root, ctrl))
		if err != nil {
			continue
		}
		dir := filepath.Join(mnt, cgroupTop, experiment, node)
		if d, ok := seen[mnt]; ok {
			cg.dirs[ctrl] = d
			continue
		}
		if err := mkdirCgroup(dir); err != nil {
			_ = cg.Destroy()
			return nil, err
		}
		seen[mnt] = dir
		cg.dirs[ctrl] = dir
		cg.all = append(cg.all, dir)
	}
	// The unified hierarchy, where a host mounts one beside v1 (systemd's
	// hybrid layout, at /sys/fs/cgroup/unified), holds the node too: it
	// has no controller here, but cgroup BPF programs attach only to v2
	// directories (a scaled node's TCP initial RTO, diecast/tcprto).
	if u := filepath.Join(root, "unified"); isCgroup2(u) {
		dir := filepath.Join(u, cgroupTop, experiment, node)
		if err := mkdirCgroup(dir); err != nil {
			_ = cg.Destroy()
			return nil, err
		}
		cg.dirs["unified"] = dir
		cg.all = append(cg.all, dir)
	}
	for _, need := range []string{"cpu", "memory", "blkio"} {
		if cg.dirs[need] == "" {
			_ = cg.Destroy()
			return nil, fmt.Errorf("create cgroup v1 (no %s hierarchy under %s): %w", need, root, ErrNoCgroupControllers)
		}
	}
	return cg, nil
}

func (c *cgroupV1) Paths() []string { return append([]string(nil), c.all...) }

// Spawn forks from a thread moved into the node's v1 cgroups for the
// moment (v1 places threads one by one: the "tasks" file), so that the
// child is born there; the thread then goes back to its own cgroups. A
// thread that cannot go back is never used again (it stays locked and
// exits with its goroutine). The unified directory (no controllers) is
// left to Add.
func (c *cgroupV1) Spawn(_ *syscall.SysProcAttr, start func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := threadCgroups()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		tid := strconv.Itoa(syscall.Gettid())
		var moved []string // the hierarchies (mounts) the thread left
		back := func() bool {
			ok := true
			for _, mnt := range moved {
				if err := writeCgroupFile(filepath.Join(mnt, home[mnt]), "tasks", tid); err != nil {
					ok = false
				}
			}
			return ok
		}
		for ctrl, dir := range c.dirs {
			if ctrl == "unified" {
				continue
			}
			mnt := strings.TrimSuffix(dir, string(filepath.Separator)+filepath.Join(cgroupTop, c.rel))
			if slices.Contains(moved, mnt) {
				continue // co-mounted controllers: one directory
			}
			if _, ok := home[mnt]; !ok {
				err = fmt.Errorf("spawn in cgroup: this thread's cgroup in %s is unknown", mnt)
				break
			}
			if err = writeCgroupFile(dir, "tasks", tid); err != nil {
				break
			}
			moved = append(moved, mnt)
		}
		if err == nil {
			err = start()
		}
		if back() {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// threadCgroups maps each v1 hierarchy's mount point under cgroupRoot to
// the calling thread's cgroup in it (/proc/thread-self/cgroup).
func threadCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("spawn in cgroup: %w", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[1] == "" {
			continue // v2's line ("0::/...")
		}
		for _, ctrl := range strings.Split(f[1], ",") {
			ctrl = strings.TrimPrefix(ctrl, "name=")
			mnt, err := filepath.EvalSymlinks(filepath.Join(cgroupRoot, ctrl))
			if err == nil {
				out[mnt] = f[2]
			}
		}
	}
	return out, nil
}

func (c *cgroupV1) Apply(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	cpu := c.dirs["cpu"]
	quota := int64(-1)
	if l.CPU > 0 {
		quota = l.quotaUs()
	}
	if err := writeCgroupFile(cpu, "cpu.cfs_period_us", strconv.Itoa(CPUPeriodUs)); err != nil {
		return err
	}
	if err := writeCgroupFile(cpu, "cpu.cfs_quota_us", strconv.FormatInt(quota, 10)); err != nil {
		return err
	}
	if l.Memory > 0 {
		if err := writeCgroupFile(c.dirs["memory"], "memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10)); err != nil {
			return err
		}
	}
	devs, err := physicalBlockDevices()
	if err != nil {
		return err
	}
	for _, d := range devs {
		for _, t := range []struct {
			file string
			v    int64
		}{
			{"blkio.throttle.read_bps_device", l.ReadBps},
			{"blkio.throttle.write_bps_device", l.WriteBps},
			{"blkio.throttle.read_iops_device", l.ReadIOPS},
			{"blkio.throttle.write_iops_device", l.WriteIOPS},
		} {
			if t.v == 0 {
				continue
			}
			if err := writeCgroupFile(c.dirs["blkio"], t.file, fmt.Sprintf("%s %d", d.majmin, t.v)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *cgroupV1) Add(pid int) error {
	for _, dir := range c.all {
		if err := writeCgroupFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

func (c *cgroupV1) CPUUsage() (time.Duration, error) {
	dir := c.dirs["cpuacct"]
	if dir == "" {
		return 0, fmt.Errorf("read cpu usage: %w", os.ErrNotExist)
	}
	ns, err := readCgroupInt(dir, "cpuacct.usage")
	return time.Duration(ns), err
}

func (c *cgroupV1) Destroy() error { return removeCgroupDirs(c.all, 5*time.Second) }
