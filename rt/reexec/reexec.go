// Package reexec runs the current binary again in a helper role: a node's
// init, an experiment daemon, the dilation launcher, the experiment
// supervisor, the KSM launcher of the memory demo. It is the one way vmux
// starts a copy of itself (runc starts container init the same way, and
// Go's own tests re-execute the test binary as a helper).
//
// In a nutshell: a package that provides a role registers it by name from
// an init function (Register); whoever needs a helper builds the command
// with Command (or Environ for syscall.ForkExec), which runs
// /proc/self/exe, the very binary that is running even if its file was
// replaced, with VMUX_ROLE=name; the re-executed binary calls Init first
// in main (vmux) or TestMain (test binaries), which runs the role and
// exits. A role runs on the main OS thread: this package's init locks it
// when a role is selected, before main starts (the dilation launcher is
// seized by its tracer as the main thread, and a role that changes
// per-thread state must stay on the thread it changed).
package reexec

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Env selects the role of a re-executed binary.
const Env = "VMUX_ROLE"

// Self is the executable a helper runs: the binary of this process.
const Self = "/proc/self/exe"

var (
	mu    sync.Mutex
	roles = map[string]func(args []string) int{}
)

func init() {
	if os.Getenv(Env) != "" {
		runtime.LockOSThread()
	}
}

// Register makes role available to Init. main gets the arguments after
// argv[0] and returns the exit status. Call it from an init function; a
// name registered twice panics (two packages claiming one role is a bug).
func Register(role string, main func(args []string) int) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := roles[role]; dup {
		panic("reexec: role " + role + " registered twice")
	}
	roles[role] = main
}

// Role is the role this process was started in, or "" (before Init).
func Role() string { return os.Getenv(Env) }

// Init runs the role this process was started in and exits with its
// status; it returns at once when there is none. Call it first in main and
// in TestMain. The role's children do not inherit the selection.
func Init() {
	role := os.Getenv(Env)
	if role == "" {
		return
	}
	os.Unsetenv(Env)
	mu.Lock()
	f, ok := roles[role]
	var known []string
	for r := range roles {
		known = append(known, r)
	}
	mu.Unlock()
	if !ok {
		sort.Strings(known)
		fmt.Fprintf(os.Stderr, "vmux: unknown helper role %q (this binary has: %s)\n", role, strings.Join(known, ", "))
		os.Exit(2)
	}
	os.Exit(f(os.Args[1:]))
}

// Command returns a command that runs exe (Self when empty) in role with
// args. Its argv[0] is "vmux-ROLE", so ps shows what each helper is; its
// environment is this process's plus the role selection (append to
// cmd.Env, do not replace it).
func Command(exe, role string, args ...string) *exec.Cmd {
	if exe == "" {
		exe = Self
	}
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = Argv0(role)
	cmd.Env = Environ(os.Environ(), role)
	return cmd
}

// Argv0 is the argv[0] a helper in role runs with.
func Argv0(role string) string { return "vmux-" + role }

// Environ returns env (a fresh copy) with role selected, for callers of
// syscall.ForkExec. Any earlier selection in env is dropped.
func Environ(env []string, role string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, Env+"=") {
			out = append(out, kv)
		}
	}
	return append(out, Env+"="+role)
}
