package linux

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotRoot is returned by RequireRoot when the caller lacks root.
var ErrNotRoot = errors.New("this needs root: run vmux as root (sudo vmux ...)")

// RequireRoot fails early, with a message that says what to do, when the
// process is not root. what names the operation for the message.
func RequireRoot(what string) error {
	if os.Geteuid() != 0 {
		return &OpError{Op: what, Err: ErrNotRoot}
	}
	return nil
}

// OpError names the operation that failed and keeps the cause for errors.Is.
type OpError struct {
	Op  string
	Err error
}

func (e *OpError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }

// retryEINTR calls f until it returns something other than EINTR.
func retryEINTR(f func() error) error {
	for {
		err := f()
		if err != unix.EINTR {
			return err
		}
	}
}

// syscallErr wraps a raw errno as *os.SyscallError (nil stays nil).
func syscallErr(name string, err error) error {
	if err == nil {
		return nil
	}
	return os.NewSyscallError(name, err)
}
