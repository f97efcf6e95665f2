package node

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// v2Needed are the controllers a v2 host must offer for vmux to use it.
var v2Needed = []string{"cpu", "memory", "io"}

// isV2Mount reports whether root is a cgroup v2 mount.
func isV2Mount(root string) (bool, error) { return linux.IsCgroup2(root) }

// haveV2 reports whether root is a cgroup v2 mount offering v2Needed.
func haveV2(root string) (bool, error) {
	ok, err := isV2Mount(root)
	if err != nil || !ok {
		return false, err
	}
	b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return false, err
	}
	have := strings.Fields(string(b))
	for _, n := range v2Needed {
		if !contains(have, n) {
			return false, nil
		}
	}
	return true, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

type cgroupV2 struct{ dir string }

func newV2(root, experiment, node string) (*cgroupV2, error) {
	dir := filepath.Join(root, cgroupTop, experiment, node)
	if err := mkdirCgroup(dir); err != nil {
		return nil, err
	}
	// Controllers must be enabled in every ancestor's subtree_control.
	enable := "+" + strings.Join(v2Needed, " +")
	for _, p := range []string{root, filepath.Join(root, cgroupTop), filepath.Dir(dir)} {
		if err := writeCgroupFile(p, "cgroup.subtree_control", enable); err != nil {
			_ = removeCgroupDirs([]string{dir}, time.Second)
			return nil, err
		}
	}
	return &cgroupV2{dir: dir}, nil
}

func (c *cgroupV2) Paths() []string { return []string{c.dir} }

// Spawn forks into the cgroup directly (clone3 CLONE_INTO_CGROUP).
func (c *cgroupV2) Spawn(sys *syscall.SysProcAttr, start func() error) error {
	f, err := os.OpenFile(c.dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open cgroup: %w", err)
	}
	defer f.Close()
	sys.UseCgroupFD, sys.CgroupFD = true, int(f.Fd())
	defer func() { sys.UseCgroupFD, sys.CgroupFD = false, 0 }()
	return start()
}

// v2CPUMax formats cpu.max for a fraction of a core.
func v2CPUMax(l Limits) string {
	if l.CPU <= 0 {
		return fmt.Sprintf("max %d", CPUPeriodUs)
	}
	return fmt.Sprintf("%d %d", l.quotaUs(), CPUPeriodUs)
}

// v2IOMax formats one io.max line for device majmin ("" if no throttle).
func v2IOMax(majmin string, l Limits) string {
	var kv []string
	for _, t := range []struct {
		key string
		v   int64
	}{{"rbps", l.ReadBps}, {"wbps", l.WriteBps}, {"riops", l.ReadIOPS}, {"wiops", l.WriteIOPS}} {
		if t.v > 0 {
			kv = append(kv, fmt.Sprintf("%s=%d", t.key, t.v))
		}
	}
	if len(kv) == 0 {
		return ""
	}
	return majmin + " " + strings.Join(kv, " ")
}

func (c *cgroupV2) Apply(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if err := writeCgroupFile(c.dir, "cpu.max", v2CPUMax(l)); err != nil {
		return err
	}
	if l.Memory > 0 {
		if err := writeCgroupFile(c.dir, "memory.max", strconv.FormatInt(l.Memory, 10)); err != nil {
			return err
		}
	}
	devs, err := physicalBlockDevices()
	if err != nil {
		return err
	}
	for _, d := range devs {
		if line := v2IOMax(d.majmin, l); line != "" {
			if err := writeCgroupFile(c.dir, "io.max", line); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *cgroupV2) Add(pid int) error {
	return writeCgroupFile(c.dir, "cgroup.procs", strconv.Itoa(pid))
}

func (c *cgroupV2) CPUUsage() (time.Duration, error) {
	f, err := os.Open(filepath.Join(c.dir, "cpu.stat"))
	if err != nil {
		return 0, fmt.Errorf("read cpu usage: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == "usage_usec" {
			us, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("read cpu usage: no usage_usec in %s/cpu.stat", c.dir)
}

func (c *cgroupV2) Destroy() error { return removeCgroupDirs([]string{c.dir}, 5*time.Second) }
