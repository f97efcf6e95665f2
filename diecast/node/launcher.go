package node

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
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
// node's TDF: SupervisedLauncher). It returns the pid of the process that init waits for; that
// process must lead its own process group so signals reach its whole tree.
type Launcher interface {
	Launch(p *Process) (pid int, err error)
}

// LauncherFactory builds a launcher for a node from its init settings.
type LauncherFactory func(s InitSettings) (Launcher, error)

// InitSettings are what a launcher may depend on.
type InitSettings struct {
	Node string
	CPU  float64 // real share of a core (0: unlimited)
	// Supervisor is init's connection to the experiment's supervisor
	// (set when the node was started with Config.Supervisor).
	Supervisor *net.UnixConn
}

var (
	launchersMu sync.Mutex
	launchers   = map[string]LauncherFactory{
		"plain":                func(InitSettings) (Launcher, error) { return PlainLauncher{}, nil },
		SupervisedLauncherName: newSupervisedLauncher,
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
