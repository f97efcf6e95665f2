//go:build linux

package linux

import (
	"errors"

	"golang.org/x/sys/unix"
)

// WaitStatus is a child's exit status as returned by wait4.
type WaitStatus = unix.WaitStatus

// ReapAny collects one exited child without blocking. It returns pid 0 when
// no child has exited yet, and ECHILD (wrapped) when there are no children.
func ReapAny() (int, WaitStatus, error) {
	var ws unix.WaitStatus
	var pid int
	err := retryEINTR(func() error {
		var e error
		pid, e = unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		return e
	})
	return pid, ws, syscallErr("wait4", err)
}

// Kill sends sig to pid (a negative pid names a process group).
func Kill(pid int, sig unix.Signal) error {
	return syscallErr("kill", unix.Kill(pid, sig))
}

// IsNoProcess reports whether err means the process does not exist (ESRCH).
func IsNoProcess(err error) bool { return err != nil && errorsIs(err, unix.ESRCH) }

func errorsIs(err error, target error) bool { return errors.Is(err, target) }
