package dilate

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/reexec"
)

// launcherRole is the reexec role of the launcher.
const launcherRole = "dilate-launcher"

// syncFd is the launcher's end of the start pipe (the first ExtraFile).
const syncFd = 3

// Launcher exit statuses, reported when the command never started.
const (
	launchFailed   = 126
	launchNotFound = 127
)

// init registers the launcher role: any binary that imports dilate and
// calls reexec.Init first thing becomes the launcher when the supervisor
// re-executes it, on the main thread (reexec locks it), the one the
// supervisor seized.
func init() {
	reexec.Register(launcherRole, func(args []string) int {
		runtime.LockOSThread()
		return launch(args)
	})
}

// launch waits until the supervisor has seized it, installs the seccomp
// filter on this thread and execs the command. It returns only on failure.
func launch(argv []string) int {
	if len(argv) < 1 {
		fmt.Fprintln(os.Stderr, "vmux launcher: no command")
		return launchFailed
	}
	var b [1]byte
	n, _ := syscall.Read(syncFd, b[:])
	if n != 1 {
		// The supervisor went away without seizing us: run nothing.
		return launchFailed
	}
	syscall.Close(syncFd)
	prog, err := buildFilter()
	if err == nil {
		err = linux.SetNoNewPrivs()
	}
	listener := -1
	if err == nil {
		listener, err = linux.InstallSeccompListener(prog)
	}
	if err == nil {
		// The handshake (handshake.go): the supervisor takes the
		// listener; a failure there only means trapped clock reads.
		_, _, _ = syscall.RawSyscall6(syscall.SYS_PTRACE, handshakeMagic, uintptr(listener), 0, 0, 0, 0)
		syscall.Close(listener)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmux launcher: %v\n", err)
		return launchFailed
	}
	if os.Getenv(slackEnv) != "" {
		probeStops()
	}
	if err := setSlack(os.Getenv(slackEnv)); err != nil {
		fmt.Fprintf(os.Stderr, "vmux launcher: %v\n", err)
		return launchFailed
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, slackEnv+"=") {
			continue
		}
		env = append(env, kv)
	}
	err = syscall.Exec(argv[0], argv[1:], env)
	fmt.Fprintf(os.Stderr, "vmux: exec %s: %v\n", argv[0], err)
	if err == syscall.ENOENT {
		return launchNotFound
	}
	return launchFailed
}
