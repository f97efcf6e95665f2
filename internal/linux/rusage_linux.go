//go:build linux

package linux

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ThreadCPUTime is the CPU time (user + system, nanosecond resolution) the
// calling OS thread has used (clock_gettime CLOCK_THREAD_CPUTIME_ID; about
// 1 µs a call here, not in the vDSO). Benchmarks on a shared machine use it,
// with runtime.LockOSThread, to measure per-core cost without the time other
// processes took.
func ThreadCPUTime() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, os.NewSyscallError("clock_gettime", err)
	}
	return time.Duration(ts.Nano()), nil
}
