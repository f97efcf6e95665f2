package node

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/vmux/vmux/diecast/diskmodel"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/reexec"
)

// diskModelReady bounds how long a disk model server may take to mount,
// calibrate and report.
const diskModelReady = 15 * time.Second

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
	if cfg.DiskModel == 0 {
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
	files []*os.File // 0-5: stdin, stdout, stderr, connection, directory, ready
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
// node's programs (an undilated one: the model keeps real time), and
// waits until each serves. Init keeps no descriptor of a connection, so a
// server that dies aborts it (ENOTCONN, never a hang); the servers are not
// init's launched programs (signals are not forwarded to them), and end
// with the node's pid namespace.
func startDiskModel(sb *sandbox, ms []diskMount, factor float64) error {
	defer closeDiskMounts(ms)
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
		l := diskLauncher{args: diskmodel.Args(diskmodel.Model{Factor: factor}, m.path),
			files: []*os.File{null, os.Stderr, os.Stderr, m.dev, m.dir, wr}}
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
