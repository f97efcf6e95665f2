//go:build linux

package linux

import (
	"time"

	"golang.org/x/sys/unix"
)

// PollReadable blocks the calling thread until one of fds is readable (or
// hung up, or in error) or d passes (d < 0: no timeout), and sets ready[i]
// for each fds[i] that is. EINTR counts as a timeout.
func PollReadable(fds []int, d time.Duration, ready []bool) error {
	p := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		p[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	var ts *unix.Timespec
	if d >= 0 {
		t := unix.NsecToTimespec(int64(d))
		ts = &t
	}
	clear(ready)
	_, err := unix.Ppoll(p, ts, nil)
	if err == unix.EINTR {
		return nil
	}
	if err != nil {
		return syscallErr("ppoll", err)
	}
	for i := range p {
		ready[i] = p[i].Revents != 0
	}
	return nil
}

// Fd is the eventfd, to poll it with other descriptors (PollReadable).
func (w *Waker) Fd() int { return w.fd }

// Drain consumes a pending wake without blocking.
func (w *Waker) Drain() {
	var b [8]byte
	_, _ = unix.Read(w.fd, b[:])
}

// Rusage returns the CPU time this process has used (user, system).
func Rusage() (user, sys time.Duration, err error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, syscallErr("getrusage", err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), nil
}
