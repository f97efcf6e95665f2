//go:build linux

package linux

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SeccompUserNotif is the action that hands a syscall to the filter's
// listener (the supervisor), which answers it (SeccompNotifAddFd, SeccompNotifReturn).
const SeccompUserNotif SeccompAction = unix.SECCOMP_RET_USER_NOTIF

// ErrNotifGone reports a notification withdrawn before it was answered
// (the task was killed), or none arriving in time.
var ErrNotifGone = errors.New("seccomp notification withdrawn or not arriving")

// seccompData is struct seccomp_data.
type seccompData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

// SeccompNotif is struct seccomp_notif: one syscall waiting for the
// listener's answer.
type SeccompNotif struct {
	ID    uint64
	Pid   uint32 // in the listener's pid namespace
	Flags uint32
	Data  seccompData
}

// Arg is the notified syscall's argument i.
func (n *SeccompNotif) Arg(i int) uint64 { return n.Data.Args[i] }

// seccompNotifResp is struct seccomp_notif_resp.
type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// seccompNotifAddfd is struct seccomp_notif_addfd.
type seccompNotifAddfd struct {
	ID         uint64
	Flags      uint32
	Srcfd      uint32
	Newfd      uint32
	NewfdFlags uint32
}

// InstallSeccompListener installs prog on the calling thread only, like
// InstallSeccomp, and returns the filter's listener (close-on-exec): the
// descriptor on which the syscalls the filter sends to SeccompUserNotif
// wait for an answer.
func InstallSeccompListener(prog SeccompProgram) (int, error) {
	if len(prog) == 0 {
		return -1, errors.New("installing seccomp filter: empty program")
	}
	fd, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER,
		uintptr(unsafe.Pointer(&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})))
	if e != 0 {
		return -1, syscallErr("seccomp(SET_MODE_FILTER, NEW_LISTENER)", e)
	}
	return int(fd), nil
}

// SeccompNotifRecv waits up to timeout for the next notification on
// listener. ErrNotifGone: none came, or it was withdrawn (ENOENT).
func SeccompNotifRecv(listener int, timeout time.Duration) (SeccompNotif, error) {
	var n SeccompNotif
	fds := []unix.PollFd{{Fd: int32(listener), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return n, fmt.Errorf("receiving seccomp notification: %w (none in %v)", ErrNotifGone, timeout)
		}
		k, err := unix.Poll(fds, int(left/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, syscallErr("poll(seccomp listener)", err)
		}
		if k == 0 {
			continue
		}
		n = SeccompNotif{}
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n)))
		switch e {
		case 0:
			return n, nil
		case unix.EINTR:
			continue
		case unix.ENOENT:
			return n, fmt.Errorf("receiving seccomp notification: %w", ErrNotifGone)
		}
		return n, syscallErr("ioctl(SECCOMP_IOCTL_NOTIF_RECV)", e)
	}
}

// SeccompNotifAddFd installs a copy of srcfd (close-on-exec) in the task
// waiting on notification id and returns its number there; the syscall
// goes on waiting for its answer (SeccompNotifReturn). Unlike the atomic
// SECCOMP_ADDFD_FLAG_SEND, it survives a signal interrupting the ioctl:
// the kernel, restarting it, finds the notification still unanswered
// (with FLAG_SEND the restarted ioctl finds it answered, fails with
// EINPROGRESS, and the task's syscall has returned 0 without the fd).
func SeccompNotifAddFd(listener int, id uint64, srcfd int) (int, error) {
	a := seccompNotifAddfd{ID: id, Srcfd: uint32(srcfd), NewfdFlags: unix.O_CLOEXEC}
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_ADDFD, uintptr(unsafe.Pointer(&a)))
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		case unix.ENOENT, unix.ESRCH:
			// ESRCH: the task's wait was interrupted (a signal) before
			// it took the fd; it makes the call again.
			return -1, fmt.Errorf("adding an fd to a seccomp notification: %w", ErrNotifGone)
		}
		return -1, syscallErr("ioctl(SECCOMP_IOCTL_NOTIF_ADDFD)", e)
	}
}

// SeccompNotifReturn answers notification id: its syscall returns val.
// ErrNotifGone: the task is no longer waiting on it (killed, or
// interrupted by a signal, after which it makes the call again).
func SeccompNotifReturn(listener int, id uint64, val int64) error {
	r := seccompNotifResp{ID: id, Val: val}
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&r)))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.ENOENT:
			return fmt.Errorf("answering seccomp notification: %w", ErrNotifGone)
		}
		return syscallErr("ioctl(SECCOMP_IOCTL_NOTIF_SEND)", e)
	}
}

// SeccompNotifContinue answers notification id by letting the syscall run
// as it was made.
func SeccompNotifContinue(listener int, id uint64) error {
	r := seccompNotifResp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&r)))
	if e != 0 && e != unix.ENOENT {
		return syscallErr("ioctl(SECCOMP_IOCTL_NOTIF_SEND)", e)
	}
	return nil
}
