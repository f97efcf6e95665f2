//go:build linux

package linux

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

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

// PidfdPid returns the pid, in this process's pid namespace, of the
// process behind pidfd (received from another namespace, say), from its
// fdinfo. It fails if the process has exited (the kernel reports -1) or
// is not visible from here (0).
func PidfdPid(pidfd int) (int, error) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(pidfd))
	if err != nil {
		return 0, fmt.Errorf("reading pidfd: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || pid <= 0 {
				return 0, fmt.Errorf("reading pidfd: process gone or not visible here (Pid: %s)", strings.TrimSpace(v))
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("reading pidfd: not a pidfd (no Pid: in its fdinfo)")
}

// Close closes a raw descriptor (a pidfd, a copied uffd).
func Close(fd int) error { return syscallErr("close", unix.Close(fd)) }
