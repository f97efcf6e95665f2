//go:build linux

package linux

import (
	"golang.org/x/sys/unix"
)

// PidfdOpen returns a pidfd for process pid (close-on-exec). It refers to
// that process for good: a later process reusing the PID is not it.
func PidfdOpen(pid int) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, syscallErr("pidfd_open", err)
	}
	return fd, nil
}

// PidfdGetfd copies descriptor targetfd of the process behind pidfd into
// this process (close-on-exec); it needs ptrace rights over that process.
func PidfdGetfd(pidfd, targetfd int) (int, error) {
	fd, err := unix.PidfdGetfd(pidfd, targetfd, 0)
	if err != nil {
		return -1, syscallErr("pidfd_getfd", err)
	}
	return fd, nil
}

// PidfdAlive reports whether the process behind pidfd still runs (a pidfd
// polls readable once the process has exited).
func PidfdAlive(pidfd int) bool {
	p := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(p, 0)
	return err == nil && n == 0
}
