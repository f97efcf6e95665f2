// Package guard undoes what a vmux process leaves behind when it dies
// without a chance to clean up (SIGKILL, the OOM killer): processes it
// started and system settings it changed.
//
// In a nutshell: Start re-executes vmux as a small guard process (reexec
// role "guard") in a session of its own, so that neither the terminal's
// signals nor a kill of the owner's process group reach it. The owner keeps
// the only write end of a pipe that is the guard's stdin (close-on-exec:
// no process the owner starts inherits it) and tells the guard, one line
// at a time, what to undo: Watch(pid) a process (and its process group) to
// SIGKILL, Hook(name) a recovery function registered by name from an init
// function (RegisterHook; mem/ksm registers "ksm", which replays the KSM
// journal). When the pipe reaches end-of-file, because the owner closed it
// (Close) or the kernel did as the owner died, the guard kills every
// watched process that is still the one it was told about (pid and start
// time), runs the hooks, and exits. Everything it does is idempotent: after
// an owner that cleaned up, it finds nothing to do.
//
// Watched processes should also carry PR_SET_PDEATHSIG: the guard covers
// what that does not (a process group's other members, a parent-death
// signal lost with the forking thread, a setuid exec that clears it).
package guard

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmux/vmux/rt/reexec"
)

// Role is the reexec role of the guard process.
const Role = "guard"

var (
	hooksMu sync.Mutex
	hooks   = map[string]func() error{}
)

// RegisterHook makes a recovery function available to guards by name (call
// it from an init function, so the re-executed guard has it too). f must
// be idempotent: it runs whether the owner cleaned up or not.
func RegisterHook(name string, f func() error) {
	hooksMu.Lock()
	defer hooksMu.Unlock()
	if _, dup := hooks[name]; dup {
		panic("guard: hook " + name + " registered twice")
	}
	hooks[name] = f
}

func init() {
	reexec.Register(Role, func([]string) int { return serve(os.Stdin, os.Stderr) })
}

// Guard is the owner's end of a running guard.
type Guard struct {
	mu     sync.Mutex // guards w and the order of lines
	w      *os.File
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts a guard for this process. exe is the vmux binary ("" for
// this one, which must call reexec.Init first).
func Start(exe string) (*Guard, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start guard: %w", err)
	}
	cmd := reexec.Command(exe, Role)
	cmd.Stdin, cmd.Stderr = r, os.Stderr
	cmd.Dir = "/"
	// Its own session: not in the owner's process group, no controlling
	// terminal. No parent-death signal: it must outlive the owner.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("start guard: %w", err)
	}
	g := &Guard{w: w, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(g.exited) }()
	st, err := startTime(os.Getpid())
	if err == nil {
		err = g.send(fmt.Sprintf("owner %d %d", os.Getpid(), st))
	}
	if err != nil {
		g.Close(time.Second)
		return nil, fmt.Errorf("start guard: %w", err)
	}
	return g, nil
}

// Pid is the guard process's pid.
func (g *Guard) Pid() int { return g.cmd.Process.Pid }

func (g *Guard) send(line string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w == nil {
		return fmt.Errorf("guard: %w", os.ErrClosed)
	}
	if _, err := io.WriteString(g.w, line+"\n"); err != nil {
		return fmt.Errorf("tell guard: %w", err)
	}
	return nil
}

// Watch asks the guard to SIGKILL process pid, and the process group it
// leads, if the owner dies before they do. A process that already exited
// needs no watching.
func (g *Guard) Watch(pid int) error {
	st, err := startTime(pid)
	if errors.Is(err, os.ErrProcessDone) || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("guard pid %d: %w", pid, err)
	}
	return g.send(fmt.Sprintf("watch %d %d", pid, st))
}

// Hook asks the guard to run the hook registered as name when the owner
// ends (RegisterHook).
func (g *Guard) Hook(name string) error {
	hooksMu.Lock()
	_, ok := hooks[name]
	hooksMu.Unlock()
	if !ok || strings.ContainsAny(name, " \n") {
		return fmt.Errorf("guard: no hook %q", name)
	}
	return g.send("hook " + name)
}

// Close ends the guard: it kills what is still watched and runs its hooks
// (nothing, if the owner cleaned up), and Close waits for that, at most
// timeout.
func (g *Guard) Close(timeout time.Duration) error {
	g.mu.Lock()
	w := g.w
	g.w = nil
	g.mu.Unlock()
	if w == nil {
		return nil
	}
	_, _ = io.WriteString(w, "close\n") // an orderly end: the owner lives on
	w.Close()
	select {
	case <-g.exited:
		return nil
	case <-time.After(timeout):
		_ = g.cmd.Process.Kill()
		<-g.exited
		return fmt.Errorf("guard: still running after %v: killed", timeout)
	}
}

type watched struct {
	pid   int
	start uint64
}

// serve is the guard process: it reads the owner's lines until end of
// file, then undoes what they name.
func serve(in io.Reader, log io.Writer) int {
	// The terminal's signals do not reach our session; a hangup or a
	// stray ^C meant for the owner must not stop us either, nor a write
	// to a terminal that is gone. SIGTERM still ends the guard (then the
	// next vmux command replays the KSM journal, and parent-death signals
	// take the processes).
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	var procs []watched
	var names []string
	var owner watched
	closed := false
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "close":
			closed = true
		case len(f) == 3 && f[0] == "owner":
			owner.pid, _ = strconv.Atoi(f[1])
			owner.start, _ = strconv.ParseUint(f[2], 10, 64)
		case len(f) == 3 && f[0] == "watch":
			pid, err1 := strconv.Atoi(f[1])
			st, err2 := strconv.ParseUint(f[2], 10, 64)
			if err1 == nil && err2 == nil && pid > 1 {
				procs = append(procs, watched{pid, st})
			}
		case len(f) == 2 && f[0] == "hook":
			names = append(names, f[1])
		default:
			fmt.Fprintf(log, "vmux guard: ignored %q\n", sc.Text())
		}
	}
	if !closed && owner.pid > 0 {
		// Died: wait (a little) until it is a zombie or gone.
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
			if s, err := startTime(owner.pid); err != nil || s != owner.start {
				break
			}
		}
	}
	status := 0
	for _, p := range procs {
		if s, err := startTime(p.pid); err != nil || s != p.start {
			continue // gone, or its pid is someone else's now
		}
		_ = syscall.Kill(-p.pid, syscall.SIGKILL) // the group it leads
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	sort.Strings(names)
	hooksMu.Lock()
	defer hooksMu.Unlock()
	for i, n := range names {
		if i > 0 && names[i-1] == n {
			continue
		}
		f, ok := hooks[n]
		if !ok {
			fmt.Fprintf(log, "vmux guard: no hook %q in this binary\n", n)
			status = 1
			continue
		}
		if err := f(); err != nil {
			fmt.Fprintf(log, "vmux guard: %s: %v\n", n, err)
			status = 1
		}
	}
	return status
}

// startTime reads field 22 of /proc/PID/stat; a zombie counts as gone.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d: %w", pid, os.ErrProcessDone)
	}
	return strconv.ParseUint(f[19], 10, 64)
}
