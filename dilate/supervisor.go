package dilate

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/reexec"
)

// Config describes one dilated run.
type Config struct {
	Args []string // the command and its arguments; Args[0] is looked up in PATH
	Env  []string // nil: the supervisor's environment
	Dir  string
	// Clock is the run's shared clock (required): its owner (a
	// clock.Clock) or a view of it. The supervisor maps the page read-only
	// for itself and into every tracee; every rewritten syscall reads its
	// current parameters, so a rate change or a pause applies to the next
	// sleep at once.
	Clock clock.Source
	// ClockReads selects how clock reads are dilated: ReadsVDSO (the
	// default) maps the replacement vDSO and the clock page at every
	// exec, so reads stay in user space; ReadsTrap hides the vDSO so
	// every read is a trapped syscall (slow; a fallback and a baseline).
	ClockReads ClockReads
	// PlainSleeps turns off the sleep-accuracy measures (sleeps.go): the
	// tracees keep the kernel's default timer slack and a relative wait's
	// real timeout counts from when the tracee resumes, not from when the
	// supervisor saw the call. A baseline for benchmarks.
	PlainSleeps           bool
	Stdin, Stdout, Stderr *os.File // nil: /dev/null
	Logger                *slog.Logger
}

// ClockReads is a clock-read strategy.
type ClockReads int

const (
	ReadsVDSO ClockReads = iota
	ReadsTrap
)

// Status is how the root process of a run ended.
type Status struct {
	Code   int            // exit code, when Signal is 0
	Signal syscall.Signal // the signal that killed it, or 0
}

func (s Status) String() string {
	if s.Signal != 0 {
		return "killed by " + s.Signal.String()
	}
	return fmt.Sprintf("exit status %d", s.Code)
}

// Supervisor traces one dilated process tree.
type Supervisor struct {
	cfg  Config
	log  *slog.Logger
	path string
	view *clock.View // the supervisor's own read-only view of the clock

	done   chan struct{}
	status Status
	err    error
	stops  map[string]uint64

	// mu guards tgids and closed: Close and Signal read them from other
	// goroutines while the trace loop updates them.
	mu     sync.Mutex
	tgids  map[int]bool
	root   int
	closed bool
	// waiting (tid -> tgid) are threads in a rewritten wait; kicks counts
	// the SIGSTOPs the clock watcher sent them (rearm.go).
	waiting map[int]int
	kicks   map[int]int
	// timerProcs (tgid -> a tid) are processes with armed timers.
	timerProcs map[int]int

	// bell wakes the trace thread of a Serve; nil for a Start.
	bell    *doorbell
	adopted atomic.Uint64 // processes adopted so far
}

// Resolve checks a command before anything starts: it must be an existing
// regular executable file, not setuid or setgid, and without file
// capabilities beyond the caller's own (ping's cap_net_raw is fine for
// root). The dilated tree runs under no_new_privs and ptrace, so the
// kernel would run such a program without its privileges: refused here
// with a reason rather than failing later in a confusing way. Programs the
// tree execs later are not checked: the kernel runs them unprivileged, so
// a dilated tree can never gain a privilege (docs/security.md). It returns
// the path.
func Resolve(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", &CommandError{Path: name, Err: fmt.Errorf("%w: %w", ErrCommand, err)}
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", &CommandError{Path: name, Err: fmt.Errorf("%w: %w", ErrCommand, err)}
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return "", &CommandError{Path: name, Err: fmt.Errorf("%w: not an executable file", ErrCommand)}
	}
	if st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		return "", &CommandError{Path: path, Err: ErrSetuid}
	}
	caps, has, err := linux.FileCapabilities(path)
	if err != nil {
		return "", &CommandError{Path: path, Err: fmt.Errorf("%w: %w", ErrCommand, err)}
	}
	if has {
		eff, err := linux.EffectiveCapabilities()
		if err != nil || caps&^eff != 0 {
			return "", &CommandError{Path: path, Err: ErrFileCaps}
		}
	}
	return path, nil
}

// Start launches the command dilated and returns once it is traced. The
// whole tree runs under the seccomp filter from its first instruction.
// While a run lasts, the supervisor reaps the children its trace thread
// forks (the launcher) and every tracee, nothing else of this process.
func Start(cfg Config) (*Supervisor, error) {
	if len(cfg.Args) == 0 {
		return nil, fmt.Errorf("%w: no command given", ErrBadConfig)
	}
	path, err := Resolve(cfg.Args[0])
	if err != nil {
		return nil, err
	}
	return start(cfg, path)
}

// start runs the trace thread: for path's command (Start), or with a
// doorbell for adopted processes (Serve, path "").
func start(cfg Config, path string) (*Supervisor, error) {
	if cfg.Clock == nil {
		return nil, fmt.Errorf("%w: no clock", ErrBadConfig)
	}
	if _, err := buildFilter(); err != nil {
		return nil, fmt.Errorf("building seccomp filter: %w", err)
	}
	f, err := cfg.Clock.ReadOnly()
	if err != nil {
		return nil, fmt.Errorf("mapping the run's clock: %w", err)
	}
	view, err := clock.Open(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("mapping the run's clock: %w", err)
	}
	s := &Supervisor{cfg: cfg, log: cfg.Logger, path: path, view: view, done: make(chan struct{}), tgids: map[int]bool{},
		waiting: map[int]int{}, kicks: map[int]int{}, timerProcs: map[int]int{}}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	started := make(chan error, 1)
	go s.run(started)
	if err := <-started; err != nil {
		<-s.done
		view.Close()
		return nil, err
	}
	return s, nil
}

// run owns the trace thread: every ptrace request comes from it.
func (s *Supervisor) run(started chan<- error) {
	defer close(s.done)
	runtime.LockOSThread()
	// The thread stays locked and dies with the goroutine: a thread that
	// was a tracer must not be reused for other goroutines.
	var pid int
	var err error
	if s.path == "" {
		s.bell, err = startDoorbell()
	} else {
		pid, err = s.launch()
	}
	if err != nil {
		started <- err
		return
	}
	started <- nil
	stopWatch, watchDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(watchDone); s.watchClock(stopWatch) }()
	t := newTracer(s, pid)
	t.bell = s.bell
	s.status, s.err = t.loop()
	close(stopWatch)
	<-watchDone
	s.view.Close()
	s.stops = make(map[string]uint64, len(t.stops))
	for nr, n := range t.stops {
		s.stops[syscallName(nr)] += n
	}
}

// launch starts the launcher stopped on its start pipe, seizes it and lets
// it go on to install the filter and exec.
func (s *Supervisor) launch() (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("creating start pipe: %w", err)
	}
	defer r.Close()
	defer w.Close()
	env := s.cfg.Env
	if env == nil {
		env = os.Environ()
	}
	env = reexec.Environ(env, launcherRole)
	if !s.cfg.PlainSleeps {
		env = append(env, slackEnv+"="+strconv.Itoa(traceeSlack))
	}
	argv := []string{reexec.Argv0(launcherRole), s.path}
	argv = append(argv, s.cfg.Args...)
	files := []*os.File{s.cfg.Stdin, s.cfg.Stdout, s.cfg.Stderr, r}
	var fds []uintptr
	for i, f := range files {
		if f == nil {
			dn, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return 0, fmt.Errorf("opening %s: %w", os.DevNull, err)
			}
			defer dn.Close()
			files[i] = dn
		}
		fds = append(fds, files[i].Fd())
	}
	pid, err := syscall.ForkExec(reexec.Self, argv, &syscall.ProcAttr{Dir: s.cfg.Dir, Env: env, Files: fds})
	if err != nil {
		return 0, fmt.Errorf("starting launcher: %w", err)
	}
	s.mu.Lock()
	s.root = pid
	s.tgids[pid] = true
	s.mu.Unlock()
	if err := linux.PtraceSeize(pid, traceOptions); err != nil {
		// Closing the pipe unread makes the launcher exit without running
		// anything; reap it so nothing is left behind.
		w.Close()
		_, _ = linux.PtraceWaitTid(pid)
		if errors.Is(err, syscall.EPERM) {
			return 0, fmt.Errorf("seizing launcher: %w", errors.Join(ErrAlreadyTraced, err))
		}
		return 0, fmt.Errorf("seizing launcher: %w", err)
	}
	if _, err := w.Write([]byte{1}); err != nil {
		_ = linux.Kill(pid, syscall.SIGKILL)
		_, _ = linux.PtraceWaitTid(pid)
		return 0, fmt.Errorf("releasing launcher: %w", err)
	}
	return pid, nil
}

const traceOptions = linux.PtraceOTraceSysGood | linux.PtraceOTraceFork | linux.PtraceOTraceVfork |
	linux.PtraceOTraceClone | linux.PtraceOTraceExec | linux.PtraceOTraceSeccomp | linux.PtraceOExitKill

// Pid is the root process of the run.
func (s *Supervisor) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.root
}

// Wait blocks until every process of the run has exited and returns how
// the root process ended. A supervisor error (the run was torn down) or
// Close is reported as the error.
func (s *Supervisor) Wait() (Status, error) {
	<-s.done
	return s.status, s.err
}

// Stops returns, once Wait has returned, how many times each syscall
// stopped at the seccomp filter: the whole tracing cost of the run.
func (s *Supervisor) Stops() map[string]uint64 {
	<-s.done
	return s.stops
}

// Signal forwards sig to the root process, or, once it has exited, to
// every process of the run still alive (Wait lasts until they exit).
func (s *Supervisor) Signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tgids[s.root] {
		return linux.Kill(s.root, sig)
	}
	for tgid := range s.tgids {
		_ = linux.Kill(tgid, sig)
	}
	return nil
}

// Close kills every process of the run and waits for the trace loop to
// finish. Wait then returns ErrClosed (unless the run had already ended).
func (s *Supervisor) Close() error {
	s.mu.Lock()
	s.closed = true
	s.killAllLocked()
	s.mu.Unlock()
	<-s.done
	return nil
}

func (s *Supervisor) killAllLocked() {
	for tgid := range s.tgids {
		_ = linux.Kill(tgid, syscall.SIGKILL)
	}
	if s.bell != nil && s.closed && !s.bell.gone.Load() {
		_ = linux.Kill(s.bell.pid, syscall.SIGKILL)
	}
}

func (s *Supervisor) trackTgid(tgid int, alive bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if alive {
		s.tgids[tgid] = true
		if s.closed {
			_ = linux.Kill(tgid, syscall.SIGKILL)
		}
	} else {
		delete(s.tgids, tgid)
	}
}

func (s *Supervisor) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// killAll tears the run down after a supervisor error.
func (s *Supervisor) killAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killAllLocked()
}
