package netd

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/vmux/vmux/diecast/topology"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/reexec"
)

// UpOptions tune Up.
type UpOptions struct {
	// Exe is the binary re-executed as the daemon (reexec role
	// DaemonRole); default this one. It must call reexec.Init first.
	Exe string
	// Timeout bounds the whole bring-up (default 60 s).
	Timeout time.Duration
	// Dilate runs every process of every node under `vmux run` at the
	// experiment's TDF (node.RunLauncher), on one virtual clock that starts
	// with the experiment. Exe must then be the vmux binary.
	Dilate bool
	// Lead delivers packets this much early on the last link into a node,
	// cancelling the fixed cost of the TUN crossings (netem.Options.Lead);
	// 0 leaves the model exact and the RTT about 250 us above it here.
	Lead time.Duration
}

// Up validates the spec file, starts the experiment daemon detached (its
// own session, no parent-death signal, logging to /run/vmux/<name>/log)
// and waits until it reports the experiment ready. On failure everything
// is torn down and the daemon's reason returned.
func Up(spec string, o UpOptions) (*State, error) {
	if err := linux.RequireRoot("vmux net up"); err != nil {
		return nil, err
	}
	nw, err := topology.Load(spec)
	if err != nil {
		return nil, err
	}
	name := nw.Name
	// One bring-up at a time: the check for a running experiment and the
	// creation of its run dir must not interleave with another up's.
	unlock, err := lockRunRoot()
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, nd := range nw.Nodes {
		if _, err := Limits(nd, nw.TDF); err != nil {
			return nil, fmt.Errorf("check %s: %w", spec, err)
		}
	}
	if st, err := Load(name); err == nil {
		if st.DaemonAlive() {
			return nil, fmt.Errorf("bring up %s: %w", name, ErrAlreadyUp)
		}
		// A dead experiment's remains: clean them first.
		if err := Down(name, time.Second); err != nil {
			return nil, fmt.Errorf("clean stale %s: %w", name, err)
		}
	} else if _, serr := os.Stat(Dir(name)); serr == nil {
		removeRemains(name)
	}
	if err := os.MkdirAll(Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("create run dir: %w", err)
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	if err := os.WriteFile(specPath(name), data, 0o644); err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	if err := startDaemon(name, o); err != nil {
		_ = Down(name, time.Second)
		return nil, err
	}
	return Load(name)
}

func startDaemon(name string, o UpOptions) error {
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	logf, err := os.OpenFile(logPath(name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open daemon log: %w", err)
	}
	defer logf.Close()
	rd, wr, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create ready pipe: %w", err)
	}
	defer rd.Close()
	cmd := reexec.Command(o.Exe, DaemonRole, name)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{wr}
	if o.Dilate {
		cmd.Env = append(cmd.Env, dilateEnv+"=1")
	}
	if o.Lead < 0 || o.Lead > time.Millisecond {
		return fmt.Errorf("bring up %s: lead %v: give 0 to 1ms (about half the zero-latency RTT)", name, o.Lead)
	}
	if o.Lead > 0 {
		cmd.Env = append(cmd.Env, leadEnv+"="+o.Lead.String())
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	wr.Close()
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	// Reap it if it exits while we live (tests); vmux net up exits at once
	// and the daemon is reparented.
	go func() { _ = cmd.Wait() }()
	_ = rd.SetReadDeadline(time.Now().Add(o.Timeout))
	line, rerr := bufio.NewReader(rd).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case line == "ok":
		return nil
	case line != "":
		return &DaemonError{Name: name, Log: logPath(name), Msg: line}
	case errors.Is(rerr, os.ErrDeadlineExceeded):
		_ = cmd.Process.Kill()
		return &DaemonError{Name: name, Log: logPath(name), Msg: fmt.Sprintf("not ready after %v", o.Timeout)}
	}
	return &DaemonError{Name: name, Log: logPath(name), Msg: "daemon exited without a report" + logTail(name)}
}

// dilateEnv and leadEnv carry UpOptions.Dilate and Lead to the daemon.
const (
	dilateEnv = "VMUX_NET_DILATE"
	leadEnv   = "VMUX_NET_LEAD"
)

func logTail(name string) string {
	b, err := os.ReadFile(logPath(name))
	if errors.Is(err, fs.ErrNotExist) || len(b) == 0 {
		return ""
	}
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	return ": " + strings.TrimSpace(string(b))
}

// lockRunRoot takes an exclusive lock on RunRoot (a flock on the directory
// itself, so nothing is left behind) and returns its release.
func lockRunRoot() (func(), error) {
	if err := os.MkdirAll(RunRoot, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", RunRoot, err)
	}
	f, err := os.Open(RunRoot)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", RunRoot, err)
	}
	if err := linux.LockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", RunRoot, err)
	}
	return func() { f.Close() }, nil
}
