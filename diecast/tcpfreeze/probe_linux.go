package tcpfreeze

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// probeBlock is how long the probe's getsockopt(TCP_INFO) must stay
// blocked for the socket to count as locked.
const probeBlock = 50 * time.Millisecond

// Probe checks that this kernel holds a socket's lock the way Freeze
// needs, on a loopback TCP pair of its own (in the caller's network
// namespace, on 127.0.0.1): the socket's descriptor is copied with
// pidfd_getfd, the blocked setsockopt(TCP_MD5SIG) must fault into the
// userfaultfd, a concurrent getsockopt(TCP_INFO), which takes the socket
// lock, must stay blocked, and after the release the setsockopt must fail
// with EINVAL and the getsockopt return. It returns nil, an
// *UnsupportedError (errors.Is ErrUnsupported) when the kernel does not
// behave so, or another error when the probe itself could not run (no
// loopback, out of descriptors). It takes about 50 ms.
func Probe() error {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return fmt.Errorf("probing tcp freeze: %w", err)
	}
	defer ln.Close()
	c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		return fmt.Errorf("probing tcp freeze: %w", err)
	}
	defer c.Close()
	s, err := ln.AcceptTCP()
	if err != nil {
		return fmt.Errorf("probing tcp freeze: %w", err)
	}
	defer s.Close()
	fd, err := rawFd(c)
	if err != nil {
		return err
	}
	pidfd, err := linux.PidfdOpen(os.Getpid())
	if err != nil {
		return &UnsupportedError{Reason: "pidfd_open", Err: err}
	}
	sfd, err := linux.PidfdGetfd(pidfd, fd)
	linux.CloseFd(pidfd)
	if err != nil {
		return &UnsupportedError{Reason: "pidfd_getfd", Err: err}
	}
	defer linux.CloseFd(sfd)
	a, err := linux.NewSockLockArena(1)
	if err != nil {
		return &UnsupportedError{Reason: "no userfaultfd for kernel faults", Err: err}
	}
	defer a.Close()
	if err := a.Arm(0); err != nil {
		return &UnsupportedError{Reason: "UFFDIO_ZEROPAGE", Err: err}
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see SockLockArena.Hold
		done <- a.Hold(0, sfd)
	}()
	var locked bool
	deadline := time.Now().Add(time.Second)
	for !locked && time.Now().Before(deadline) {
		slots, err := a.Locked(5 * time.Millisecond)
		if err != nil {
			a.Release(0)
			<-done
			return fmt.Errorf("probing tcp freeze: %w", err)
		}
		locked = len(slots) == 1
		if !locked {
			select {
			case err := <-done:
				return &UnsupportedError{Reason: "setsockopt(TCP_MD5SIG) returned without sleeping in the userfaultfd", Err: err}
			default:
			}
		}
	}
	if !locked {
		a.Release(0)
		<-done
		return &UnsupportedError{Reason: "setsockopt(TCP_MD5SIG) never reached its argument's second page"}
	}
	info := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // asleep in the kernel until the release
		info <- linux.TCPInfoBlocks(sfd)
	}()
	var verdict error
	select {
	case <-info:
		verdict = &UnsupportedError{Reason: "the socket was not locked while setsockopt(TCP_MD5SIG) slept in its copy"}
		info = nil
	case <-time.After(probeBlock):
	}
	if err := a.Release(0); err != nil {
		verdict = errors.Join(verdict, fmt.Errorf("probing tcp freeze: %w", err))
	}
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EINVAL) && verdict == nil {
			verdict = &UnsupportedError{Reason: "the released setsockopt(TCP_MD5SIG) did not fail with EINVAL (it may have changed the socket)", Err: err}
		}
	case <-time.After(time.Second):
		// Closing the arena (deferred) wakes it with EFAULT.
		verdict = errors.Join(verdict, &UnsupportedError{Reason: "the released setsockopt(TCP_MD5SIG) did not return"})
	}
	if info != nil {
		select {
		case <-info:
		case <-time.After(time.Second):
			verdict = errors.Join(verdict, &UnsupportedError{Reason: "getsockopt(TCP_INFO) stayed blocked after the release"})
		}
	}
	return verdict
}

// rawFd is the descriptor of c (which c keeps owning).
func rawFd(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("probing tcp freeze: %w", err)
	}
	fd := -1
	if err := rc.Control(func(p uintptr) { fd = int(p) }); err != nil {
		return -1, fmt.Errorf("probing tcp freeze: %w", err)
	}
	return fd, nil
}
