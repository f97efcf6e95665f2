package netd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/vmux/vmux/diecast/node"
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
	// Dilate runs every process of every node dilated on the
	// experiment's one clock (at its TDF; `vmux clock` changes it), traced
	// by the experiment's one supervisor.
	Dilate bool
	// Lead delivers packets this much early on the last link into a node,
	// cancelling the fixed cost of the TUN crossings (netem.Options.Lead);
	// 0 leaves the model exact and the RTT about 250 us above it here.
	Lead time.Duration
	// Writable are host directories every node may write, bound at the
	// same paths (a node's file system is otherwise read-only; its /tmp is
	// its own memory): a workload's scratch space, results, a disk.
	Writable []string
	// NoTCPFreeze turns off the TCP freeze of a dilated experiment's
	// pauses (pause.go): the nodes' TCP then times out and retransmits
	// across a pause. For baselines (docs/benchmarks.md).
	NoTCPFreeze bool
}

// Up is UpContext without cancellation.
func Up(spec string, o UpOptions) (*State, error) { return UpContext(context.Background(), spec, o) }

// UpContext reads the spec file once (a regular file of at most
// topology.MaxSpecBytes: never a FIFO or a device), validates it, copies
// the very bytes it validated into the run directory (owner-only), starts
// the experiment daemon detached (its own session, no parent-death signal,
// logging to /run/vmux/<name>/log, mode 0600) and waits until it reports
// the experiment ready, then checks that the daemon and every node's init
// are alive and every node's exec socket answers: only then is the
// experiment up. On failure, or when ctx ends (SIGINT, SIGTERM), everything
// is torn down and the reason returned (ctx's error, wrapped, on
// cancellation).
func UpContext(ctx context.Context, spec string, o UpOptions) (*State, error) {
	if err := linux.RequireRoot("vmux net up"); err != nil {
		return nil, err
	}
	data, err := topology.ReadFile(spec)
	if err != nil {
		return nil, err
	}
	nw, err := topology.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	name := nw.Name
	for _, nd := range nw.Nodes {
		if _, err := Limits(nd, nw.TDF); err != nil {
			return nil, fmt.Errorf("check %s: %w", spec, err)
		}
	}
	// One bring-up at a time: the check for a running experiment and the
	// creation of its run dir must not interleave with another up's.
	unlock, err := lockRunRoot()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bring up %s: %w", name, err)
	}
	if st, err := Load(name); err == nil {
		if st.DaemonAlive() {
			return nil, fmt.Errorf("bring up %s: %w", name, ErrAlreadyUp)
		}
		// A dead experiment's remains: clean them first.
		if err := Down(name, time.Second); err != nil {
			return nil, fmt.Errorf("clean stale %s: %w", name, err)
		}
	} else if errors.Is(err, ErrForeignPidNS) {
		return nil, err // live or not, not ours to judge from here
	} else if _, serr := os.Stat(Dir(name)); serr == nil {
		removeRemains(name)
	}
	// Root's only: the spec, state, log and sockets of an experiment are
	// no one else's (nodes see the hosts file through a bind mount).
	if err := os.MkdirAll(Dir(name), 0o700); err != nil {
		return nil, fmt.Errorf("create run dir: %w", err)
	}
	if err := os.Chmod(Dir(name), 0o700); err != nil {
		return nil, fmt.Errorf("create run dir: %w", err)
	}
	if err := writePrivate(specPath(name), data); err != nil {
		_ = removeRemains(name)
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	if err := startDaemon(ctx, name, o); err != nil {
		_ = Down(name, time.Second)
		return nil, err
	}
	st, err := Load(name)
	if err == nil {
		err = st.checkUp()
	}
	if err != nil {
		_ = Down(name, time.Second)
		return nil, fmt.Errorf("bring up %s: %w", name, err)
	}
	return st, nil
}

// writePrivate writes a file only root can read (whatever the umask): the
// run directory's files carry specs, argv and addresses of root's
// experiments.
func writePrivate(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// openLog opens the experiment's log for appending, owner-only.
func openLog(name string) (*os.File, error) {
	f, err := os.OpenFile(logPath(name), os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	// An older vmux made it 0644: the exec argv it holds is no one else's.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkUp verifies what the daemon reported: it and every node's init run,
// and every node's init accepts connections on its exec socket.
func (st *State) checkUp() error {
	if !st.Ready {
		return fmt.Errorf("%w: state not marked ready", ErrNotUp)
	}
	if !st.DaemonAlive() {
		return fmt.Errorf("%w: the daemon (pid %d) exited", ErrNotUp, st.Daemon.Pid)
	}
	var errs []error
	for _, n := range st.Nodes {
		if err := node.Probe(n.State); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrNotUp, err)
	}
	return nil
}

func startDaemon(ctx context.Context, name string, o UpOptions) error {
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Lead < 0 || o.Lead > time.Millisecond {
		return fmt.Errorf("bring up %s: lead %v: give 0 to 1ms (about half the zero-latency RTT)", name, o.Lead)
	}
	logf, err := openLog(name)
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
	if o.Lead > 0 {
		cmd.Env = append(cmd.Env, leadEnv+"="+o.Lead.String())
	}
	if o.NoTCPFreeze {
		cmd.Env = append(cmd.Env, noFreezeEnv+"=1")
	}
	wenv, err := writableEnviron(o.Writable)
	if err != nil {
		return err
	}
	cmd.Env = append(cmd.Env, wenv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	wr.Close()
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	// Reap it if it exits while we live (tests); vmux net up exits at once
	// and the daemon is reparented.
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	_ = rd.SetReadDeadline(time.Now().Add(o.Timeout))
	type result struct {
		line string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(io.LimitReader(rd, 64<<10)).ReadString('\n')
		got <- result{strings.TrimSpace(line), err}
	}()
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		// Stop the daemon here (it may not have recorded itself in the
		// state yet): SIGTERM, which it acts on once its bring-up is
		// done, then SIGKILL; the caller's Down removes what is left.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(cancelGrace):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = rd.SetReadDeadline(time.Now())
		<-got
		return fmt.Errorf("bring up %s: %w", name, ctx.Err())
	}
	switch {
	case r.line == "ok":
		return nil
	case r.line != "":
		return &DaemonError{Name: name, Log: logPath(name), Msg: r.line}
	case errors.Is(r.err, os.ErrDeadlineExceeded):
		_ = cmd.Process.Kill()
		return &DaemonError{Name: name, Log: logPath(name), Msg: fmt.Sprintf("not ready after %v", o.Timeout)}
	}
	return &DaemonError{Name: name, Log: logPath(name), Msg: "daemon exited without a report" + logTail(name)}
}

// cancelGrace is how long a cancelled bring-up lets the daemon tear down
// what it started before it is killed (Down then removes the rest).
const cancelGrace = 3 * time.Second

// dilateEnv, leadEnv and noFreezeEnv carry UpOptions.Dilate, Lead and
// NoTCPFreeze to the daemon.
const (
	dilateEnv   = "VMUX_NET_DILATE"
	leadEnv     = "VMUX_NET_LEAD"
	noFreezeEnv = "VMUX_NET_NO_TCP_FREEZE"
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
