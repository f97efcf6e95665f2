package linux

import (
	"encoding/binary"
	"time"

	"golang.org/x/sys/unix"
)

// Waker is an eventfd a goroutine can sleep on with a nanosecond timeout
// (ppoll uses hrtimers, unlike Go's runtime timers, which round waits
// under a millisecond up to a millisecond) and another can wake.
type Waker struct{ fd int }

// NewWaker creates the eventfd (non-blocking, close-on-exec).
func NewWaker() (*Waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, &OpError{Op: "creating eventfd", Err: syscallErr("eventfd", err)}
	}
	return &Waker{fd: fd}, nil
}

// Wake makes a current or next Wait return at once.
func (w *Waker) Wake() error {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	_, err := unix.Write(w.fd, b[:])
	if err == unix.EAGAIN {
		return nil // counter saturated: already awake
	}
	return syscallErr("write eventfd", err)
}

// Wait blocks the calling thread until Wake or until d passes (d < 0:
// no timeout). It reports whether it was woken, and consumes the wake.
func (w *Waker) Wait(d time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	var ts *unix.Timespec
	if d >= 0 {
		t := unix.NsecToTimespec(int64(d))
		ts = &t
	}
	n, err := unix.Ppoll(fds, ts, nil)
	if err == unix.EINTR {
		return false, nil
	}
	if err != nil {
		return false, syscallErr("ppoll", err)
	}
	if n == 0 {
		return false, nil
	}
	var b [8]byte
	if _, err := unix.Read(w.fd, b[:]); err != nil && err != unix.EAGAIN {
		return true, syscallErr("read eventfd", err)
	}
	return true, nil
}

// Close releases the eventfd.
func (w *Waker) Close() error { return syscallErr("close eventfd", unix.Close(w.fd)) }
