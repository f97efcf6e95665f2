package node

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmux/vmux/rt/vclock"
)

// Process is what a node's init is asked to run.
type Process struct {
	Argv  []string
	Env   []string
	Dir   string
	Files []*os.File // stdin, stdout, stderr
	// TTY: Files[0] is a terminal to make the controlling terminal of the
	// new session.
	TTY bool
}

// Launcher starts every process of a node: it is the one place where a node
// turns a request into a running program, so time dilation plugs in here (a
// launcher that starts the program under the dilation supervisor at the
// node's TDF). It returns the pid of the process that init waits for; that
// process must lead its own process group so signals reach its whole tree.
type Launcher interface {
	Launch(p *Process) (pid int, err error)
}

// LauncherFactory builds a launcher for a node from its init settings.
type LauncherFactory func(s InitSettings) (Launcher, error)

// InitSettings are what a launcher may depend on.
type InitSettings struct {
	Node  string
	TDF   float64
	CPU   float64   // real share of a core (0: unlimited)
	Epoch time.Time // real time at which the experiment's virtual clock started
	Exe   string    // the vmux executable init runs as
}

var (
	launchersMu sync.Mutex
	launchers   = map[string]LauncherFactory{
		"plain":         func(InitSettings) (Launcher, error) { return PlainLauncher{}, nil },
		RunLauncherName: newRunLauncher,
	}
)

// RegisterLauncher makes a launcher available by name to node inits (call
// it from an init function of the package that provides it, so that the
// re-executed vmux binary knows it too).
func RegisterLauncher(name string, f LauncherFactory) {
	launchersMu.Lock()
	defer launchersMu.Unlock()
	launchers[name] = f
}

// newLauncher returns the launcher registered as name ("" means plain).
func newLauncher(name string, s InitSettings) (Launcher, error) {
	if name == "" {
		name = "plain"
	}
	launchersMu.Lock()
	f, ok := launchers[name]
	var names []string
	for n := range launchers {
		names = append(names, n)
	}
	launchersMu.Unlock()
	if !ok {
		sort.Strings(names)
		return nil, fmt.Errorf("%w: unknown launcher %q (known: %v)", ErrBadConfig, name, names)
	}
	return f(s)
}

// PlainLauncher runs the program as it is (TDF 1): fork, new session, exec.
type PlainLauncher struct{}

// Launch implements Launcher.
func (PlainLauncher) Launch(p *Process) (int, error) {
	if len(p.Argv) == 0 {
		return 0, fmt.Errorf("launch: %w: empty command", ErrBadConfig)
	}
	path, err := lookPath(p.Argv[0], p.Env)
	if err != nil {
		return 0, err
	}
	fds := make([]uintptr, len(p.Files))
	for i, f := range p.Files {
		fds[i] = f.Fd()
	}
	pid, err := syscall.ForkExec(path, p.Argv, &syscall.ProcAttr{
		Dir:   p.Dir,
		Env:   p.Env,
		Files: fds,
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: p.TTY, Ctty: 0},
	})
	if err != nil {
		return 0, fmt.Errorf("launch %s: %w", path, err)
	}
	return pid, nil
}

// lookPath resolves name with the PATH of env (the caller's, not init's).
func lookPath(name string, env []string) (string, error) {
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("look up %q: %w", name, exec.ErrNotFound)
}

// RunLauncherName selects RunLauncher.
const RunLauncherName = "vmux-run"

// RunLauncher starts every program of a node under `vmux run` (the
// time-dilation supervisor) at the node's TDF. Every program gets
// --start = Epoch + (now - Epoch)/TDF, so all the programs of all the nodes
// read one virtual clock that started with the experiment, although each
// has its own supervisor (error: the supervisor's start-up, ~ms, / TDF).
type RunLauncher struct {
	Exe   string
	TDF   float64
	CPU   float64
	Epoch time.Time
}

func newRunLauncher(s InitSettings) (Launcher, error) {
	if s.Exe == "" || !(s.TDF > 0) || s.Epoch.IsZero() {
		return nil, fmt.Errorf("%w: launcher %s needs the vmux executable, a TDF > 0 and the experiment epoch", ErrBadConfig, RunLauncherName)
	}
	return RunLauncher{Exe: s.Exe, TDF: s.TDF, CPU: s.CPU, Epoch: s.Epoch}, nil
}

// Argv is the command line that runs argv dilated, started at real time now.
func (l RunLauncher) Argv(argv []string, now time.Time) []string {
	virt := l.Epoch.Add(time.Duration(float64(now.Sub(l.Epoch)) / l.TDF))
	// Decimal forms vmux run reads back: the spec's tdf was validated with
	// vclock.TDFFromFloat, which reads this very form; the real share is
	// rounded to 9 decimals (cpu/tdf such as 0.5/3 has no exact decimal
	// form, and 'g' formatting gave 17 digits or an exponent, which vmux
	// run refused).
	out := []string{l.Exe, "run", "--tdf", strconv.FormatFloat(l.TDF, 'f', -1, 64),
		"--start", virt.UTC().Format(time.RFC3339Nano)}
	if l.CPU > 0 && l.CPU <= 1 {
		if _, err := vclock.ShareFromFloat(l.CPU); err == nil {
			out = append(out, "--cpu", strings.TrimRight(strings.TrimRight(strconv.FormatFloat(l.CPU, 'f', 9, 64), "0"), "."))
		}
	}
	return append(append(out, "--"), argv...)
}

// Launch implements Launcher.
func (l RunLauncher) Launch(p *Process) (int, error) {
	if len(p.Argv) == 0 {
		return 0, fmt.Errorf("launch: %w: empty command", ErrBadConfig)
	}
	q := *p
	q.Argv = l.Argv(p.Argv, time.Now())
	return PlainLauncher{}.Launch(&q)
}
