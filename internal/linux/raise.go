package linux

import (
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sigaction is the kernel's struct sigaction on x86-64 (rt_sigaction).
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// DieOfSignal ends this process the way a program killed by sig ends, so a
// shell sees the same status (and prints "Segmentation fault" or "Aborted"
// where it would have): it puts sig's default action back with a raw
// rt_sigaction (the Go runtime's own handlers would turn SIGSEGV, SIGABRT,
// SIGBUS, SIGFPE, SIGILL and SIGQUIT into a crash dump and exit status 2),
// unblocks it and sends it to the calling thread. Core dumps are disabled
// first (RLIMIT_CORE 0), so that vmux does not write a core of itself over
// the one its child may have written, as GNU timeout does. If the process
// survives (sig's default action is to ignore, or sig is not a signal), it
// exits with 128+sig, the status a shell reports for a killed child.
// It never returns.
func DieOfSignal(sig syscall.Signal) {
	runtime.LockOSThread() // the signal goes to this thread, unblocked here
	if sig > 0 && sig < 65 && sig != unix.SIGKILL && sig != unix.SIGSTOP {
		_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
		act := sigaction{handler: 0} // SIG_DFL
		_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
		set := uint64(1) << (uint(sig) - 1)
		_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_UNBLOCK, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
		_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
		// Delivery happens on the way back from the syscall; give a
		// signal sent while another thread had it blocked a moment.
		time.Sleep(50 * time.Millisecond)
	} else if sig == unix.SIGKILL {
		_ = unix.Kill(unix.Getpid(), unix.SIGKILL)
	}
	os.Exit(128 + int(sig))
}
