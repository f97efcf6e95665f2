package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// cgroupTop is the name of the directory under each hierarchy that holds
// every vmux experiment: <hierarchy>/vmux/<experiment>/<node>.
const cgroupTop = "vmux"

// writeCgroupFile writes one value into a cgroup control file.
func writeCgroupFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("write cgroup %s=%q: %w", p, value, err)
	}
	return nil
}

// readCgroupInt reads a control file holding one integer.
func readCgroupInt(dir, file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, fmt.Errorf("read cgroup: %w", err)
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// cgroupPids lists the processes in dir's cgroup.procs.
func cgroupPids(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if pid, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// mkdirCgroup creates dir and its parents; a concurrent teardown of another
// experiment may remove the shared vmux parent between the two, so retry.
func mkdirCgroup(dir string) error {
	var err error
	for range 5 {
		if err = os.MkdirAll(dir, 0o755); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	return nil
}

// removeCgroupDirs kills the processes in each dir, waits until the dir is
// empty, removes it, then removes the experiment and vmux parents if empty.
func removeCgroupDirs(paths []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var errs []error
	for _, dir := range paths {
		if err := removeOne(dir, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	for _, dir := range paths {
		exp := filepath.Dir(dir)
		if filepath.Base(filepath.Dir(exp)) != cgroupTop {
			continue // not ours: never remove anything else
		}
		_ = os.Remove(exp)
		_ = os.Remove(filepath.Dir(exp))
	}
	return errors.Join(errs...)
}

func removeOne(dir string, deadline time.Time) error {
	for {
		pids, err := cgroupPids(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		for _, pid := range pids {
			_ = linux.Kill(pid, linux.SIGKILL)
		}
		if len(pids) == 0 {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if !linux.IsBusy(err) {
				return fmt.Errorf("remove cgroup: %w", err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w (pids %v)", dir, ErrCgroupBusy, pids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blockDevice is a physical block device (major:minor) of the host.
type blockDevice struct{ name, majmin string }

// physicalBlockDevices lists the block devices backed by hardware (those
// with a device link in sysfs), the ones worth throttling; loop and zram
// devices are skipped.
func physicalBlockDevices() ([]blockDevice, error) {
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var out []blockDevice
	for _, e := range ents {
		base := filepath.Join("/sys/block", e.Name())
		if _, err := os.Stat(filepath.Join(base, "device")); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(base, "dev"))
		if err != nil {
			continue
		}
		out = append(out, blockDevice{name: e.Name(), majmin: strings.TrimSpace(string(b))})
	}
	return out, nil
}
