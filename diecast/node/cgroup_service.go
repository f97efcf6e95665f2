package node

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ServiceCgroup is the cgroup of a process that serves an experiment from
// outside its nodes (the experiment daemon, whose link emulator holds the
// packets in flight): <hierarchy>/vmux/<experiment>/<name>, with a memory
// limit. On v1 it joins the memory hierarchy only: the daemon's CPU must
// stay where it was, not be shared with the nodes inside the experiment's
// cpu group (it is their network hardware). On v2 (one hierarchy for all)
// it takes the largest cpu.weight for the same reason. Teardown needs no
// record of it: it is a directory under vmux/<experiment> like the nodes'.
type ServiceCgroup struct {
	dirs []string // cgroup directories joined
	mnts []string // the hierarchy each is in
	back []string // the hierarchies' cgroups the process came from (Leave)
}

// v2MaxWeight is the largest cpu.weight of cgroup v2.
const v2MaxWeight = 10000

// NewServiceCgroup creates the service cgroup name (a name no node can
// have, e.g. "_netd") of experiment with a memory limit of memory bytes.
func NewServiceCgroup(experiment, name string, memory int64) (*ServiceCgroup, error) {
	if memory < 4096 {
		return nil, fmt.Errorf("%w: service cgroup memory %d bytes is below one page", ErrBadConfig, memory)
	}
	if ok, _ := haveV2(cgroupRoot); ok {
		v2, err := newV2(cgroupRoot, experiment, name)
		if err != nil {
			return nil, err
		}
		sc := &ServiceCgroup{dirs: []string{v2.dir}, mnts: []string{cgroupRoot}}
		err = errors.Join(writeCgroupFile(v2.dir, "memory.max", strconv.FormatInt(memory, 10)),
			writeCgroupFile(v2.dir, "cpu.weight", strconv.Itoa(v2MaxWeight)))
		if err != nil {
			_ = sc.Destroy()
			return nil, err
		}
		return sc, nil
	}
	mnt, err := filepath.EvalSymlinks(filepath.Join(cgroupRoot, "memory"))
	if err != nil {
		return nil, fmt.Errorf("create service cgroup (no memory hierarchy under %s): %w", cgroupRoot, ErrNoCgroupControllers)
	}
	dir := filepath.Join(mnt, cgroupTop, experiment, name)
	if err := mkdirCgroup(dir); err != nil {
		return nil, err
	}
	sc := &ServiceCgroup{dirs: []string{dir}, mnts: []string{mnt}}
	if err := writeCgroupFile(dir, "memory.limit_in_bytes", strconv.FormatInt(memory, 10)); err != nil {
		_ = sc.Destroy()
		return nil, err
	}
	return sc, nil
}

// Paths are the cgroup directories.
func (c *ServiceCgroup) Paths() []string { return append([]string(nil), c.dirs...) }

// Join moves the calling process (every thread) into the cgroup, and
// remembers where it was for Leave.
func (c *ServiceCgroup) Join() error {
	c.back = c.back[:0]
	for i, dir := range c.dirs {
		from, err := ownCgroupDir(c.mnts[i])
		if err != nil {
			return err
		}
		if err := writeCgroupFile(dir, "cgroup.procs", strconv.Itoa(os.Getpid())); err != nil {
			return err
		}
		c.back = append(c.back, from)
	}
	return nil
}

// Leave moves the calling process back where Join found it, so that the
// cgroup can be removed by the process itself at its teardown.
func (c *ServiceCgroup) Leave() error {
	var errs []error
	for _, dir := range c.back {
		errs = append(errs, writeCgroupFile(dir, "cgroup.procs", strconv.Itoa(os.Getpid())))
	}
	return errors.Join(errs...)
}

// Destroy kills what is left inside and removes the directories.
func (c *ServiceCgroup) Destroy() error { return removeCgroupDirs(c.dirs, 5*time.Second) }

// ownCgroupDir is the directory of the calling process's cgroup in the
// hierarchy mounted at mnt (found through /proc/self/cgroup).
func ownCgroupDir(mnt string) (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("read own cgroup: %w", err)
	}
	defer f.Close()
	v2, _ := isV2Mount(mnt)
	ctrl := strings.Split(filepath.Base(mnt), ",")[0] // "cpu,cpuacct" names two
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if (v2 && parts[0] == "0" && parts[1] == "") || (!v2 && contains(strings.Split(parts[1], ","), ctrl)) {
			return filepath.Join(mnt, parts[2]), nil
		}
	}
	return "", fmt.Errorf("read own cgroup: no %s hierarchy in /proc/self/cgroup", ctrl)
}
