package linux

import "golang.org/x/sys/unix"

// SetThreadNice sets the nice value of the calling OS thread only (Linux
// keeps nice per thread). The caller must hold runtime.LockOSThread, or
// the value sticks to a thread other goroutines will use. Lowering nice
// needs CAP_SYS_NICE: errors.Is(err, unix.EACCES/EPERM) tells.
func SetThreadNice(nice int) error {
	return syscallErr("setpriority", unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice))
}
