package node

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vmux/vmux/diecast/diskmodel"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/reexec"
)

// diskModelReady bounds how long a disk model server may take to mount,
// calibrate and report.
const diskModelReady = 5 * time.Second

// diskMount is a writable directory of the node covered by the disk
// model in init's mount namespace: its FUSE connection and the directory
// underneath, until its server has them.
type diskMount struct {
	path     string
	dev, dir *os.File
}

func closeDiskMounts(ms []diskMount) {
	for _, m := range ms {
		m.dev.Close()
		m.dir.Close()
	}
}

// openFuseDevs opens a FUSE connection for each writable directory, while
// the host's /dev is still there.
func openFuseDevs(cfg initConfig) ([]*os.File, error) {
	if cfg.DiskModel == nil {
		return nil, nil
	}
	var devs []*os.File
	for range cfg.Writable {
		d, err := linux.OpenFuse()
		if err != nil {
			for _, d := range devs {
				d.Close()
			}
			return nil, fmt.Errorf("disk model: %w", err)
		}
		devs = append(devs, d)
	}
	return devs, nil
}

// mountDiskModel covers each writable directory (attached) with its FUSE
// connection, keeping a descriptor of the directory underneath for the
// server. It takes ownership of devs.
func mountDiskModel(cfg initConfig, devs []*os.File) ([]diskMount, error) {
	var ms []diskMount
	for i, w := range cfg.Writable {
		dir, err := linux.OpenDir(w)
		if err == nil {
			if err = linux.MountFuse(devs[i], w, "vmux-disk"); err != nil {
				dir.Close()
			}
		}
		if err != nil {
			closeDiskMounts(ms)
			for _, d := range devs[i:] {
				d.Close()
			}
			return nil, fmt.Errorf("disk model on %s: %w", w, err)
		}
		ms = append(ms, diskMount{path: w, dev: devs[i], dir: dir})
	}
	return ms, nil
}

// diskLauncher starts a disk model server (reexec role) with its
// descriptors; the program's Process is not used.
type diskLauncher struct {
	args  []string
	files []*os.File // 0-6: stdin, stdout, stderr, connection, directory, ready[, clock]
}

func (l diskLauncher) Launch(*Process) (int, error) {
	fds := make([]uintptr, len(l.files))
	for i, f := range l.files {
		fds[i] = f.Fd()
	}
	return syscall.ForkExec(reexec.Self, append([]string{reexec.Argv0(diskmodel.Role)}, l.args...), &syscall.ProcAttr{
		Env:   reexec.Environ(os.Environ(), diskmodel.Role),
		Files: fds,
		// No Pdeathsig: it fires when the forking thread exits, and the
		// sandbox's launch thread exits at once. The pid namespace ends it.
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
}

// startDiskModel starts the server of each mount, confined like the
// node's programs (an undilated one: the model reads the node's time
// from the clock page, if init was given one, and keeps its own real
// time), and waits until each serves. The node's disk rates are the
// servers' (its cgroup has none: CgroupLimits), paced before each timed
// call. Init keeps no descriptor of a connection or of the clock, so a
// server that dies aborts its connection (ENOTCONN, never a hang); the
// servers are not init's launched programs (signals are not forwarded to
// them), and end with the node's pid namespace.
func startDiskModel(sb *sandbox, ms []diskMount, cfg initConfig) error {
	defer closeDiskMounts(ms)
	var clk *os.File
	if cfg.ClockFd != 0 {
		clk = os.NewFile(uintptr(cfg.ClockFd), "clock")
		defer clk.Close()
	}
	if len(ms) == 0 {
		return nil
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("disk model: %w", err)
	}
	defer null.Close()
	for _, m := range ms {
		rd, wr, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("disk model: %w", err)
		}
		l := diskLauncher{args: diskmodel.Args(*cfg.DiskModel, m.path, clk != nil),
			files: []*os.File{null, os.Stderr, os.Stderr, m.dev, m.dir, wr}}
		if clk != nil {
			l.files = append(l.files, clk) // diskmodel.ClockFd
		}
		pid, err := sb.launch(l, &Process{})
		wr.Close()
		if err == nil {
			err = awaitDiskModel(rd)
			if err != nil {
				_ = linux.Kill(pid, linux.SIGKILL)
			}
		}
		rd.Close()
		if err != nil {
			return fmt.Errorf("disk model on %s: %w", m.path, err)
		}
	}
	return nil
}

// awaitDiskModel reads a server's one readiness line (bounded in size and
// time).
func awaitDiskModel(rd *os.File) error {
	_ = rd.SetReadDeadline(time.Now().Add(diskModelReady))
	line, err := bufio.NewReader(io.LimitReader(rd, 128)).ReadString('\n')
	if err != nil {
		return fmt.Errorf("%w: server not ready: %q: %v", ErrInitFailed, line, err)
	}
	var lead int64
	if _, err := fmt.Sscanf(line, "ok lead=%d", &lead); err != nil {
		return fmt.Errorf("%w: server said %q", ErrInitFailed, line)
	}
	return nil
}

// diskCgroupPrefix names the cgroup of a node's disk model servers:
// _disk-<node>, beside the node's (no node name starts with '_').
const diskCgroupPrefix = "_disk-"

// moveDiskServers moves the node's disk model servers out of its cpu and
// cpuacct cgroups into vmux/<experiment>/_disk-<node>, which has no quota:
// their CPU (the FUSE round trip, a few tens of µs a request) is the
// experiment's, as DieCast's disk simulator ran in the VMM, not taken from
// the node's share/k, which it would starve (docs/benchmarks.md, the disk
// study). They stay in the node's memory, blkio and pids cgroups and its
// namespaces. v1 only (on v2 one directory holds every controller: they
// stay in the node's). It returns the directories made, for teardown.
func moveDiskServers(cfg Config, cg Cgroup) ([]string, error) {
	v1, ok := cg.(*cgroupV1)
	if !ok {
		return nil, nil
	}
	procs, err := os.ReadFile(filepath.Join(v1.dirs["cpu"], "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("find disk model servers: %w", err)
	}
	var pids []string
	for _, p := range strings.Fields(string(procs)) {
		b, err := os.ReadFile("/proc/" + p + "/cmdline")
		if a, _, _ := bytes.Cut(b, []byte{0}); err == nil && string(a) == reexec.Argv0(diskmodel.Role) {
			pids = append(pids, p)
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("%w: no disk model server in the node's cgroup", ErrInitFailed)
	}
	var dirs []string
	for _, ctrl := range []string{"cpu", "cpuacct"} {
		d := v1.dirs[ctrl]
		if d == "" || slices.Contains(dirs, filepath.Join(filepath.Dir(d), diskCgroupPrefix+cfg.Name)) {
			continue
		}
		dir := filepath.Join(filepath.Dir(d), diskCgroupPrefix+cfg.Name)
		if err := mkdirCgroup(dir); err != nil {
			return dirs, err
		}
		dirs = append(dirs, dir)
		for _, p := range pids {
			if err := writeCgroupFile(dir, "cgroup.procs", p); err != nil {
				return dirs, fmt.Errorf("move disk model server %s: %w", p, err)
			}
		}
	}
	return dirs, nil
}
