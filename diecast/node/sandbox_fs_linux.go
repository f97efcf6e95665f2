package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vmux/vmux/internal/linux"
)

// What the node sees of /proc and /sys, as runc's default spec has it:
// readable, but read-only where writes reach the host's kernel, and
// masked where reads leak the host's (kernel memory, keys, timers).
var (
	procReadOnly = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	procMasked   = []string{"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap"}
	// scratch are writable, private, empty file systems (tmpfs) where
	// programs expect to write; everything else is read-only.
	scratch = []struct {
		path string
		mode string
	}{{"/tmp", "1777"}, {"/var/tmp", "1777"}, {"/run", "755"}}
	// devices are the character devices of the node's /dev.
	devices = []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}
	devLinks = [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}}
)

// fsAttrs are the attributes of everything the node gets from the host.
const fsAttrs = linux.AttrRdonly | linux.AttrNoSuid | linux.AttrNoDev

// setupRootFS builds a node's file system view in init's new mount
// namespace: the host's root (or cfg.Root, pivoted into) read-only,
// without setuid or device files; a fresh /proc of the node's pid
// namespace with the host-facing parts read-only or masked; a fresh
// read-only /sys of the node's network namespace, with only the node's own
// cgroups under /sys/fs/cgroup (read-only); a /dev of its own with the
// usual devices, a private devpts, /dev/shm and mqueue; private writable
// /tmp, /var/tmp and /run (which hides /run/vmux and every experiment's
// sockets and state); the experiment's hosts file on /etc/hosts; and the
// host directories cfg.Writable, read-write at the same paths.
//
// With the disk model (cfg.DiskModel), each writable directory is then
// covered by a FUSE mount (diskmodel_linux.go) whose server the caller
// starts with the returned mounts.
func setupRootFS(cfg initConfig) (_ []diskMount, err error) {
	// Taken from the host before anything moves: the hosts file and the
	// node's cgroup directories, to be attached inside the new view.
	var hosts *linux.DetachedMount
	if cfg.HostsFile != "" {
		m, err := linux.CloneMount(cfg.HostsFile, fsAttrs|linux.AttrNoExec)
		if err != nil {
			return nil, err
		}
		defer m.Close()
		hosts = m
	}
	cgs, err := cloneCgroups(cfg)
	defer func() {
		for _, c := range cgs {
			c.m.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	devs, err := openFuseDevs(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, d := range devs {
				d.Close()
			}
		}
	}()
	var writable []*linux.DetachedMount
	defer func() {
		for _, m := range writable {
			m.Close()
		}
	}()
	for _, w := range cfg.Writable {
		if !isDir(w) {
			return nil, fmt.Errorf("%w: writable %s is not a directory", ErrBadConfig, w)
		}
		m, err := linux.CloneMount(w, linux.AttrNoSuid|linux.AttrNoDev)
		if err != nil {
			return nil, err
		}
		writable = append(writable, m)
	}
	if cfg.Root != "" {
		if err := enterRoot(cfg.Root, cfg.Writable); err != nil {
			return nil, err
		}
	}
	// The host's special file systems go, then everything left is made
	// read-only, no setuid, no devices, in one call for the whole tree.
	for _, p := range []string{"/proc", "/sys", "/dev"} {
		if err := linux.DetachMount(p); err != nil {
			return nil, err
		}
	}
	if err := linux.SetMountAttrs("/", true, fsAttrs, 0); err != nil {
		return nil, err
	}
	if err := setupDev(cfg.Memory); err != nil {
		return nil, err
	}
	if err := setupProc(); err != nil {
		return nil, err
	}
	if err := setupSys(cgs); err != nil {
		return nil, err
	}
	for _, d := range scratch {
		if !isDir(d.path) {
			continue
		}
		if err := linux.MountFS("tmpfs", d.path, linux.MountNoSuid|linux.MountNoDev, tmpfsData(d.mode, cfg.Memory)); err != nil {
			return nil, err
		}
	}
	for i, m := range writable {
		// A directory under a scratch tmpfs (a test's /tmp/...) needs its
		// mount point made there; elsewhere it exists.
		if err := os.MkdirAll(cfg.Writable[i], 0o755); err != nil {
			return nil, fmt.Errorf("create mount point of writable %s: %w", cfg.Writable[i], err)
		}
		if err := m.Attach(cfg.Writable[i]); err != nil {
			return nil, err
		}
	}
	if hosts != nil {
		if _, err := os.Stat("/etc/hosts"); err == nil {
			if err := hosts.Attach("/etc/hosts"); err != nil {
				return nil, err
			}
		}
	}
	if devs == nil {
		return nil, nil
	}
	ms, err := mountDiskModel(cfg, devs)
	devs = nil // owned by mountDiskModel
	return ms, err
}

// tmpfsData is the mount data of a scratch tmpfs: the mode, and a size no
// larger than the node's memory limit (its pages are charged to the node's
// memory cgroup anyway; the kernel's default is half of the host's RAM).
func tmpfsData(mode string, memory int64) string {
	d := "mode=" + mode
	if memory > 0 {
		d += ",size=" + strconv.FormatInt(memory, 10)
	}
	return d
}

// cgroupMount is one of the node's cgroup directories, detached, with
// where it goes under /sys/fs/cgroup in the node.
type cgroupMount struct {
	m      *linux.DetachedMount
	target string // relative to /sys/fs/cgroup ("" on v2: the mount itself)
}

// cloneCgroups takes a read-only copy of each of the node's cgroup
// directories (<hierarchy>/vmux/<experiment>/<node>).
func cloneCgroups(cfg initConfig) ([]cgroupMount, error) {
	suffix := "/" + filepath.Join(cgroupTop, cfg.Experiment, cfg.Node)
	var out []cgroupMount
	for _, dir := range cfg.Cgroups {
		hier, ok := strings.CutSuffix(dir, suffix)
		rel, err := filepath.Rel(cgroupRoot, hier)
		if !ok || err != nil || strings.HasPrefix(rel, "..") {
			return out, fmt.Errorf("%w: cgroup %s is not <hierarchy>%s", ErrBadConfig, dir, suffix)
		}
		if rel == "unified" {
			// a v1 host's unified directory: no controller, there for
			// BPF programs only; the node is not shown more than before
			continue
		}
		m, err := linux.CloneMount(dir, fsAttrs|linux.AttrNoExec)
		if err != nil {
			return out, err
		}
		if rel == "." {
			rel = ""
		}
		out = append(out, cgroupMount{m: m, target: rel})
	}
	return out, nil
}

// enterRoot makes root the node's root file system: a bind mount of it
// (pivot_root needs a mount point), with the mount points the node needs
// created in it first (it becomes read-only), then pivot_root into it.
func enterRoot(root string, writable []string) error {
	st, err := os.Lstat(root)
	if err != nil {
		return fmt.Errorf("%w: root %s: %v", ErrBadConfig, root, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: root %s is not a directory", ErrBadConfig, root)
	}
	if err := linux.BindMount(root, root, true, 0); err != nil {
		return err
	}
	for _, d := range append([]string{"proc", "sys", "dev", "tmp", "run", "etc"}, writable...) {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("create mount point in root %s: %w", root, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "etc/hosts")); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(filepath.Join(root, "etc/hosts"), nil, 0o644); err != nil {
			return fmt.Errorf("create /etc/hosts in root %s: %w", root, err)
		}
	}
	return linux.PivotRoot(root)
}

// setupDev mounts the node's own /dev: a small tmpfs with the usual
// character devices, a private devpts instance (the node's ptys), /dev/shm
// and an mqueue of the node's ipc namespace; then /dev itself read-only.
func setupDev(memory int64) error {
	if err := linux.MountFS("tmpfs", "/dev", linux.MountNoSuid|linux.MountNoExec, "mode=755,size=65536"); err != nil {
		return err
	}
	for _, d := range devices {
		if err := linux.MakeCharDev("/dev/"+d.name, 0o666, d.major, d.minor); err != nil {
			return err
		}
	}
	for _, l := range devLinks {
		if err := os.Symlink(l[0], "/dev/"+l[1]); err != nil {
			return fmt.Errorf("create /dev/%s: %w", l[1], err)
		}
	}
	for _, d := range []string{"pts", "shm", "mqueue"} {
		if err := os.Mkdir("/dev/"+d, 0o755); err != nil {
			return fmt.Errorf("create /dev/%s: %w", d, err)
		}
	}
	if err := linux.MountFS("devpts", "/dev/pts", linux.MountNoSuid|linux.MountNoExec, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return err
	}
	if err := linux.MountFS("tmpfs", "/dev/shm", linux.MountNoSuid|linux.MountNoDev|linux.MountNoExec, tmpfsData("1777", memory)); err != nil {
		return err
	}
	if err := linux.MountFS("mqueue", "/dev/mqueue", linux.MountNoSuid|linux.MountNoDev|linux.MountNoExec, ""); err != nil {
		return err
	}
	return linux.RemountFS("/dev", linux.MountRdonly|linux.MountNoSuid|linux.MountNoExec)
}

// setupProc mounts a fresh /proc (the node's pid namespace) and makes the
// host-facing parts read-only or masks them.
func setupProc() error {
	if err := linux.MountProc(); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	for _, p := range procReadOnly {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := linux.BindMount(p, p, false, linux.MountRdonly|linux.MountNoSuid|linux.MountNoDev|linux.MountNoExec); err != nil {
			return err
		}
	}
	return nil
}

// setupSys mounts a fresh read-only sysfs (the node's network devices)
// with only the node's own cgroups under /sys/fs/cgroup, then masks what
// procMasked lists (also under /proc: /dev/null exists by now).
func setupSys(cgs []cgroupMount) error {
	ro := linux.MountRdonly | linux.MountNoSuid | linux.MountNoDev | linux.MountNoExec
	if err := linux.MountFS("sysfs", "/sys", ro, ""); err != nil {
		return err
	}
	v1 := false
	for _, c := range cgs {
		v1 = v1 || c.target != ""
	}
	if v1 {
		if err := linux.MountFS("tmpfs", "/sys/fs/cgroup", linux.MountNoSuid|linux.MountNoDev|linux.MountNoExec, "mode=755,size=65536"); err != nil {
			return err
		}
	}
	for _, c := range cgs {
		target := filepath.Join("/sys/fs/cgroup", c.target)
		if c.target != "" {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("create cgroup mount point: %w", err)
			}
		}
		if err := c.m.Attach(target); err != nil {
			return err
		}
	}
	if v1 {
		if err := linux.RemountFS("/sys/fs/cgroup", ro); err != nil {
			return err
		}
	}
	for _, p := range procMasked {
		st, err := os.Stat(p)
		switch {
		case err != nil:
			continue
		case st.IsDir():
			err = linux.MountFS("tmpfs", p, ro, "mode=555")
		default: // reads of it return nothing
			err = linux.BindMount("/dev/null", p, false, linux.MountRdonly|linux.MountNoSuid|linux.MountNoExec)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// setupFS gives init's mount namespace the node's view: the sandbox's
// (setupRootFS), or for a privileged node the host's with only a fresh
// /proc and the hosts file.
func setupFS(cfg initConfig) ([]diskMount, error) {
	if !cfg.Privileged {
		return setupRootFS(cfg)
	}
	if cfg.DiskModel != nil {
		return nil, fmt.Errorf("%w: the disk model covers a sandbox's writable directories; a privileged node has none", ErrBadConfig)
	}
	if err := linux.MountProc(); err != nil {
		return nil, fmt.Errorf("mount /proc: %w", err)
	}
	if cfg.HostsFile != "" {
		// Read-only: every node of an experiment shares this one file.
		if err := linux.BindMountReadOnly(cfg.HostsFile, "/etc/hosts"); err != nil {
			return nil, fmt.Errorf("bind hosts file: %w", err)
		}
	}
	return nil, nil
}
