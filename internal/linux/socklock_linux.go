//go:build linux

package linux

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SockLockArena holds TCP socket locks from user space (diecast/tcpfreeze):
// a setsockopt(TCP_MD5SIG) whose argument runs from a present page into
// a page registered MISSING with a userfaultfd sleeps inside the copy the
// kernel makes under lock_sock(), so the socket stays locked (owned by
// user: its timers are deferred, its incoming packets wait in its
// backlog) until the page is filled; the call then fails with EINVAL
// (an all-zero argument has no address family) and changes nothing.
//
// An arena has slots: slot i is pages 2i (present, the shared zero page)
// and 2i+1 (missing until released). One userfaultfd and one mapping
// serve every slot; the uffd's fault messages say which slots are locked.
type SockLockArena struct {
	uffd  *Uffd
	mem   []byte
	page  int
	slots int
}

// sizeofTCPMD5Sig is sizeof(struct tcp_md5sig) (linux/tcp.h): the
// sockaddr_storage, flags, prefixlen, keylen, ifindex and an 80-byte key.
const sizeofTCPMD5Sig = 216

// NewSockLockArena creates an arena of n slots. It needs a userfaultfd
// that handles kernel-mode faults (CAP_SYS_PTRACE, i.e. root, while
// vm.unprivileged_userfaultfd is 0).
func NewSockLockArena(n int) (*SockLockArena, error) {
	if n <= 0 || n > 1<<16 {
		return nil, fmt.Errorf("creating socket-lock arena: %d slots: %w", n, unix.EINVAL)
	}
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK, 0, 0)
	if e != 0 {
		return nil, &OpError{Op: "creating socket-lock arena", Err: syscallErr("userfaultfd", e)}
	}
	a := &SockLockArena{uffd: NewUffd(int(fd)), page: os.Getpagesize(), slots: n}
	if _, err := a.uffd.API(0); err != nil {
		a.uffd.Close()
		return nil, &OpError{Op: "creating socket-lock arena", Err: err}
	}
	mem, err := unix.Mmap(-1, 0, 2*n*a.page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		a.uffd.Close()
		return nil, &OpError{Op: "creating socket-lock arena", Err: syscallErr("mmap", err)}
	}
	a.mem = mem
	if err := a.uffd.Register(a.addr(0), uint64(len(mem)), UffdRegisterMissing); err != nil {
		a.Close()
		return nil, &OpError{Op: "creating socket-lock arena", Err: err}
	}
	return a, nil
}

// Slots is the number of slots.
func (a *SockLockArena) Slots() int { return a.slots }

// Fd is the userfaultfd (for tests counting descriptors).
func (a *SockLockArena) Fd() int { return a.uffd.Fd() }

func (a *SockLockArena) addr(pg int) uint64 {
	return uint64(uintptr(unsafe.Pointer(&a.mem[0]))) + uint64(pg*a.page)
}

// Arm readies slot i for a Hold: its first page present (the zero page),
// its second missing. An armed slot that was released before must not be
// armed again (its second page is present): use a fresh slot.
func (a *SockLockArena) Arm(i int) error {
	if i < 0 || i >= a.slots {
		return fmt.Errorf("arming slot %d of %d: %w", i, a.slots, unix.EINVAL)
	}
	_, err := a.uffd.Zeropage(a.addr(2*i), uint64(a.page), 0)
	if errors.Is(err, unix.EEXIST) {
		err = nil
	}
	return err
}

// Hold locks socket sfd through slot i and returns only when the slot is
// released (or the lock could not be taken): the error is the
// setsockopt's, EINVAL after a release. It must run on a goroutine locked
// to its OS thread (runtime.LockOSThread) that exits without unlocking,
// so that the thread, whose signal mask Hold blocks entirely (a signal
// would end the sleep and with it the lock), dies with the goroutine.
func (a *SockLockArena) Hold(i, sfd int) error {
	if i < 0 || i >= a.slots {
		return fmt.Errorf("holding slot %d of %d: %w", i, a.slots, unix.EINVAL)
	}
	all := unix.Sigset_t{}
	for j := range all.Val {
		all.Val[j] = ^uint64(0)
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, nil); err != nil {
		return syscallErr("rt_sigprocmask", err)
	}
	optval := a.addr(2*i+1) - 4
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(sfd), unix.IPPROTO_TCP, unix.TCP_MD5SIG,
		uintptr(optval), sizeofTCPMD5Sig, 0)
	if e != 0 {
		return syscallErr("setsockopt(TCP_MD5SIG)", e)
	}
	return nil
}

// Locked waits up to timeout for fault messages and returns the slots
// whose Hold now sleeps with its socket locked (each reported once).
// It returns nil, nil when the time ran out with nothing new.
func (a *SockLockArena) Locked(timeout time.Duration) ([]int, error) {
	ms := int(timeout / time.Millisecond)
	if timeout > 0 && ms == 0 {
		ms = 1
	}
	p := []unix.PollFd{{Fd: int32(a.uffd.Fd()), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Poll(p, ms)
		if err == unix.EINTR {
			if ms = int(time.Until(deadline) / time.Millisecond); ms < 0 {
				ms = 0
			}
			continue
		}
		if err != nil {
			return nil, syscallErr("poll(userfaultfd)", err)
		}
		if n == 0 {
			return nil, nil
		}
		break
	}
	var buf [16 * UffdMsgSize]byte
	var out []int
	for {
		n, err := a.uffd.ReadMsgs(buf[:])
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
		for off := 0; off+UffdMsgSize <= n; off += UffdMsgSize {
			m, err := ParseUffdMsg(buf[off : off+UffdMsgSize])
			if err != nil || m.Event != UffdEventPagefault {
				continue
			}
			pg := int((m.Address - a.addr(0)) / uint64(a.page))
			if m.Address >= a.addr(0) && pg%2 == 1 && pg/2 < a.slots {
				out = append(out, pg/2)
			}
		}
	}
}

// Release fills slot i's second page: its Hold (sleeping or not yet
// there) returns EINVAL, which unlocks the socket. Releasing twice is a
// no-op.
func (a *SockLockArena) Release(i int) error {
	if i < 0 || i >= a.slots {
		return fmt.Errorf("releasing slot %d of %d: %w", i, a.slots, unix.EINVAL)
	}
	for {
		_, err := a.uffd.Zeropage(a.addr(2*i+1), uint64(a.page), 0)
		switch {
		case err == nil, errors.Is(err, unix.EEXIST):
			return nil
		case errors.Is(err, unix.EAGAIN):
			continue // the mapping was changing: try again
		default:
			return err
		}
	}
}

// Close unmaps the arena and closes its uffd; any Hold still sleeping
// wakes with EFAULT (its socket is unlocked). Call it after every Hold
// has returned.
func (a *SockLockArena) Close() error {
	var errs []error
	if a.mem != nil {
		errs = append(errs, syscallErr("munmap", unix.Munmap(a.mem)))
		a.mem = nil
	}
	errs = append(errs, a.uffd.Close())
	return errors.Join(errs...)
}

// FdInode returns the inode number of descriptor fd (a socket's is the N
// of "socket:[N]").
func FdInode(fd int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, syscallErr("fstat", err)
	}
	return st.Ino, nil
}

// CloseFd closes a raw descriptor.
func CloseFd(fd int) error { return syscallErr("close", unix.Close(fd)) }

// TCPInfoBlocks calls getsockopt(TCP_INFO) on fd, which takes the socket
// lock: it sleeps while someone else holds it (for the probe).
func TCPInfoBlocks(fd int) error {
	_, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	return syscallErr("getsockopt(TCP_INFO)", err)
}
