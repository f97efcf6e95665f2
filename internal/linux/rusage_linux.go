//go:build linux

package linux

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ThreadCPUTime is the CPU time (user + system) the calling OS thread has
// used. Benchmarks on a shared machine use it, with runtime.LockOSThread,
// to measure per-core cost without the time other processes took.
func ThreadCPUTime() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0, os.NewSyscallError("getrusage", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
