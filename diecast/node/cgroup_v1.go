package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// v1Controllers are the hierarchies a node joins. cpuacct gives CPU usage;
// on hosts that co-mount "cpu,cpuacct" both names resolve to one directory.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "blkio", "pids"}

type cgroupV1 struct {
	dirs map[string]string // controller -> cgroup dir
	all  []string          // distinct dirs, in creation order
}

func newV1(root, experiment, node string) (*cgroupV1, error) {
	cg := &cgroupV1{dirs: map[string]string{}}
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
