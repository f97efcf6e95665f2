package dilate

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/reexec"
)

// An experiment's supervisor (Serve) has no program of its own: it adopts
// processes that others started (each node's init parks a launcher for
// every program it runs and hands it over with Adopt) and traces them and
// everything they start, daemons included, on the experiment's one clock,
// until Close. Adopting needs a ptrace request from the trace thread,
// which sits in wait4: the doorbell wakes it. The doorbell is a helper
// process the trace thread forks and seizes at start; ringing it
// (SIGUSR1 to its seized thread) gives wait4 a stop to return, at which the trace thread runs
// the queued requests and lets the doorbell sleep on (the signal is
// never delivered). It dies with the trace thread (parent-death signal).

// doorbellRole is the reexec role of the doorbell.
const doorbellRole = "dilate-doorbell"

func init() {
	reexec.Register(doorbellRole, func([]string) int {
		for {
			_ = unix.Pause()
		}
	})
}

// maxQueued bounds the requests waiting for the trace thread.
const maxQueued = 256

// Serve starts an experiment-wide supervisor on cfg.Clock (cfg.Args must be
// empty). While a Serve lasts, the supervisor reaps the children the trace
// thread forks and every tracee, nothing else of this process.
func Serve(cfg Config) (*Supervisor, error) {
	if len(cfg.Args) != 0 {
		return nil, fmt.Errorf("%w: Serve adopts its processes; it runs no command", ErrBadConfig)
	}
	return start(cfg, "")
}

// doorbell is the serve loop's wake-up.
type doorbell struct {
	pid   int         // set once, before the supervisor's goroutines start
	gone  atomic.Bool // it exited (Close reads it from another goroutine)
	rung  atomic.Bool
	queue chan func(t *tracer)
}

// startDoorbell forks the doorbell from the trace thread and seizes it.
func startDoorbell() (*doorbell, error) {
	dn, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("starting the supervisor's doorbell: %w", err)
	}
	defer dn.Close()
	fd := dn.Fd()
	pid, err := syscall.ForkExec(reexec.Self, []string{reexec.Argv0(doorbellRole)}, &syscall.ProcAttr{
		Env:   reexec.Environ(os.Environ(), doorbellRole),
		Files: []uintptr{fd, fd, fd},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true},
	})
	if err != nil {
		return nil, fmt.Errorf("starting the supervisor's doorbell: %w", err)
	}
	if err := linux.PtraceSeize(pid, linux.PtraceOExitKill); err != nil {
		_ = linux.Kill(pid, syscall.SIGKILL)
		_, _ = linux.PtraceWaitTid(pid)
		return nil, fmt.Errorf("seizing the supervisor's doorbell: %w", err)
	}
	return &doorbell{pid: pid, queue: make(chan func(t *tracer), maxQueued)}, nil
}

// do queues f for the trace thread and rings. It fails when the queue is
// full (the trace thread is stuck or gone).
func (b *doorbell) do(f func(t *tracer)) error {
	select {
	case b.queue <- f:
	default:
		return fmt.Errorf("%w: %d requests already wait for the trace thread", ErrBusy, maxQueued)
	}
	if b.rung.CompareAndSwap(false, true) {
		if b.gone.Load() {
			return fmt.Errorf("ringing the supervisor's doorbell: %w", ErrClosed)
		}
		// To the traced thread itself: the doorbell is a Go process whose
		// other threads are not traced, and a signal sent to the process
		// may be taken by one of them (one whose handler ignores it), so
		// that no stop wakes the trace thread and every request waits
		// for good (seen at 256 nodes: adoptions stopped being answered).
		if err := linux.PtraceTgkill(b.pid, b.pid, int(syscall.SIGUSR1)); err != nil {
			return fmt.Errorf("ringing the supervisor's doorbell: %w", err)
		}
	}
	return nil
}

// stop handles a stop of the doorbell on the trace thread: run what was
// queued, keep the doorbell asleep.
func (b *doorbell) stop(t *tracer, ws linux.WaitStatus) error {
	if ws.Exited() || ws.Signaled() {
		b.gone.Store(true)
		if t.s.isClosed() {
			return nil
		}
		return fmt.Errorf("tracing: the supervisor's doorbell died (%v)", ws)
	}
	b.rung.Store(false)
	for {
		select {
		case f := <-b.queue:
			f(t)
			continue
		default:
		}
		break
	}
	if !ws.Stopped() {
		return nil
	}
	if ws.TrapCause() == linux.PtraceEventStop {
		return ignoreGone(linux.PtraceListen(b.pid))
	}
	return ignoreGone(linux.PtraceCont(b.pid, 0)) // never deliver the ring
}

// Adopt makes the supervisor trace the process behind pidfd (a launcher,
// parked until its starter releases it: see node's supervised launcher)
// and everything it starts, on the experiment's clock with the CPU share
// of domain d (nil: the clock's). It returns once the process is traced;
// its starter then lets it go on. Adopt keeps its own copy of pidfd.
func (s *Supervisor) Adopt(pidfd *os.File, d *Domain) error {
	if s.bell == nil {
		return fmt.Errorf("%w: only a supervisor started by Serve adopts processes", ErrBadConfig)
	}
	pid, err := linux.PidfdPid(int(pidfd.Fd()))
	if err != nil {
		return fmt.Errorf("adopting: %w", err)
	}
	fd, err := unix.FcntlInt(pidfd.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("adopting: keeping the pidfd: %w", err)
	}
	own := os.NewFile(uintptr(fd), "pidfd")
	done := make(chan error, 1)
	err = s.bell.do(func(t *tracer) { done <- t.adopt(pid, d, own) })
	if err != nil {
		own.Close()
		return err
	}
	select {
	case err := <-done:
		return err
	case <-s.done:
		return fmt.Errorf("adopting: %w", ErrClosed)
	}
}

// adopt seizes pid on the trace thread and records its tree.
func (t *tracer) adopt(pid int, d *Domain, pidfd *os.File) error {
	if t.s.isClosed() {
		pidfd.Close()
		return ErrClosed
	}
	if err := linux.PtraceSeize(pid, traceOptions); err != nil {
		pidfd.Close()
		if errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("adopting %d: %w", pid, errors.Join(ErrAlreadyTraced, err))
		}
		return fmt.Errorf("adopting %d: %w", pid, err)
	}
	t.threads[pid] = &thread{tid: pid, tgid: pid, as: &aspace{}, tree: newTree(pid, d, pidfd)}
	t.s.trackTgid(pid, true)
	t.s.adopted.Add(1)
	return nil
}

// Parked is a launcher that someone other than the supervisor started (a
// node's init), stopped before its program until Release: Adopt it first.
type Parked struct {
	Pid     int
	release *os.File
}

// Park starts the launcher of the program at path (resolved by the
// caller, see Resolve) with argv, env and dir, files as its stdin, stdout
// and stderr, and sys for its process attributes (a new session, say). It
// waits, running nothing, until Release; Abort (or the caller dying) makes
// it exit with status 126 instead.
func Park(path string, argv, env []string, dir string, files [3]*os.File, sys *syscall.SysProcAttr) (*Parked, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("parking launcher: %w", err)
	}
	defer r.Close()
	env = append(reexec.Environ(env, launcherRole), slackEnv+"="+fmt.Sprint(traceeSlack))
	fds := []uintptr{files[0].Fd(), files[1].Fd(), files[2].Fd(), r.Fd()}
	pid, err := syscall.ForkExec(reexec.Self, append([]string{reexec.Argv0(launcherRole), path}, argv...),
		&syscall.ProcAttr{Dir: dir, Env: env, Files: fds, Sys: sys})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("parking launcher: %w", err)
	}
	return &Parked{Pid: pid, release: w}, nil
}

// Release lets the adopted launcher go on to its program.
func (p *Parked) Release() error {
	defer p.release.Close()
	if _, err := p.release.Write([]byte{1}); err != nil {
		return fmt.Errorf("releasing launcher %d: %w", p.Pid, err)
	}
	return nil
}

// Abort makes the launcher exit without running anything.
func (p *Parked) Abort() { p.release.Close() }
