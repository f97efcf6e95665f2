//go:build linux

package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// userfaultfd(2) and its ioctls (include/uapi/linux/userfaultfd.h, Linux
// 6.8+ for MOVE). The constants are spelled out here because x/sys/unix has
// none of them.

// SysUserfaultfd is the x86-64 syscall number of userfaultfd(2), for
// callers that inject it into another process.
const SysUserfaultfd = 323

// UffdUserModeOnly is userfaultfd(2)'s flag that limits a uffd to faults
// from user mode (what an unprivileged process may create).
const UffdUserModeOnly = 1

// UserfaultfdIocNew is /dev/userfaultfd's ioctl that creates a userfaultfd
// for the calling process (_IO(0xAA, 0x00)); its argument is the flags.
const UserfaultfdIocNew = 0xAA00

// UffdAPI is the API version UFFDIO_API negotiates.
const UffdAPI = 0xAA

// Features of UFFDIO_API.
const (
	UffdFeaturePagefaultFlagWP = 1 << 0
	UffdFeatureEventFork       = 1 << 1
	UffdFeatureEventRemap      = 1 << 2
	UffdFeatureEventRemove     = 1 << 3
	UffdFeatureEventUnmap      = 1 << 6
	UffdFeatureSigbus          = 1 << 7
	UffdFeatureThreadID        = 1 << 8
	UffdFeatureExactAddress    = 1 << 11
	UffdFeatureWPUnpopulated   = 1 << 13
	UffdFeaturePoison          = 1 << 14
	UffdFeatureWPAsync         = 1 << 15
	UffdFeatureMove            = 1 << 16
)

// Registration modes.
const (
	UffdRegisterMissing = 1 << 0
	UffdRegisterWP      = 1 << 1
)

// Modes of the resolving ioctls.
const (
	UffdCopyDontWake         = 1 << 0
	UffdCopyWP               = 1 << 1
	UffdZeropageDontWake     = 1 << 0
	UffdWriteProtectWP       = 1 << 0
	UffdWriteProtectDontWake = 1 << 1
	UffdMoveDontWake         = 1 << 0
	UffdMoveAllowSrcHoles    = 1 << 1
)

// Events of a uffd_msg.
const (
	UffdEventPagefault = 0x12
	UffdEventFork      = 0x13
	UffdEventRemap     = 0x14
	UffdEventRemove    = 0x15
	UffdEventUnmap     = 0x16
)

// Flags of a page-fault message.
const (
	UffdPagefaultWrite = 1 << 0
	UffdPagefaultWP    = 1 << 1
)

// ioctl numbers: _IOWR(0xAA, nr, size) = 3<<30 | size<<16 | 0xAA<<8 | nr.
func uffdIOWR(nr, size uintptr) uintptr { return 3<<30 | size<<16 | 0xAA<<8 | nr }
func uffdIOR(nr, size uintptr) uintptr  { return 2<<30 | size<<16 | 0xAA<<8 | nr }

type uffdioAPI struct{ api, features, ioctls uint64 }
type uffdioRange struct{ start, len uint64 }
type uffdioRegister struct {
	rng          uffdioRange
	mode, ioctls uint64
}
type uffdioCopy struct {
	dst, src, len, mode uint64
	copied              int64
}
type uffdioZeropage struct {
	rng    uffdioRange
	mode   uint64
	zeroed int64
}
type uffdioWriteProtect struct {
	rng  uffdioRange
	mode uint64
}
type uffdioMove struct {
	dst, src, len, mode uint64
	moved               int64
}

var (
	uffdioAPICmd          = uffdIOWR(0x3F, unsafe.Sizeof(uffdioAPI{}))
	uffdioRegisterCmd     = uffdIOWR(0x00, unsafe.Sizeof(uffdioRegister{}))
	uffdioUnregisterCmd   = uffdIOR(0x01, unsafe.Sizeof(uffdioRange{}))
	uffdioWakeCmd         = uffdIOR(0x02, unsafe.Sizeof(uffdioRange{}))
	uffdioCopyCmd         = uffdIOWR(0x03, unsafe.Sizeof(uffdioCopy{}))
	uffdioZeropageCmd     = uffdIOWR(0x04, unsafe.Sizeof(uffdioZeropage{}))
	uffdioMoveCmd         = uffdIOWR(0x05, unsafe.Sizeof(uffdioMove{}))
	uffdioWriteProtectCmd = uffdIOWR(0x06, unsafe.Sizeof(uffdioWriteProtect{}))
)

func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// Uffd is a userfaultfd, possibly one created in another process and copied
// out with PidfdGetfd: its ioctls then act on that process's memory.
type Uffd struct {
	fd int
}

// NewUffd wraps a userfaultfd descriptor; Close closes it.
func NewUffd(fd int) *Uffd { return &Uffd{fd: fd} }

// Fd is the descriptor.
func (u *Uffd) Fd() int { return u.fd }

// Close closes the descriptor.
func (u *Uffd) Close() error {
	if u.fd < 0 {
		return nil
	}
	err := unix.Close(u.fd)
	u.fd = -1
	return syscallErr("close", err)
}

// API negotiates features (UFFDIO_API) and returns what the kernel offers.
// It must be the first ioctl on a new uffd.
func (u *Uffd) API(features uint64) (uint64, error) {
	a := uffdioAPI{api: UffdAPI, features: features}
	if err := ioctlPtr(u.fd, uffdioAPICmd, unsafe.Pointer(&a)); err != nil {
		return 0, syscallErr("ioctl(UFFDIO_API)", err)
	}
	return a.features, nil
}

// Register registers [start, start+n) with mode (UffdRegister*).
func (u *Uffd) Register(start, n uint64, mode uint64) error {
	r := uffdioRegister{rng: uffdioRange{start, n}, mode: mode}
	return syscallErr("ioctl(UFFDIO_REGISTER)", retryEINTR(func() error {
		return ioctlPtr(u.fd, uffdioRegisterCmd, unsafe.Pointer(&r))
	}))
}

// Unregister unregisters [start, start+n).
func (u *Uffd) Unregister(start, n uint64) error {
	r := uffdioRange{start, n}
	return syscallErr("ioctl(UFFDIO_UNREGISTER)", retryEINTR(func() error {
		return ioctlPtr(u.fd, uffdioUnregisterCmd, unsafe.Pointer(&r))
	}))
}

// Wake wakes the threads waiting on faults in [start, start+n).
func (u *Uffd) Wake(start, n uint64) error {
	r := uffdioRange{start, n}
	return syscallErr("ioctl(UFFDIO_WAKE)", ioctlPtr(u.fd, uffdioWakeCmd, unsafe.Pointer(&r)))
}

// Copy fills the missing pages at dst with len(src) bytes from src
// (UFFDIO_COPY) and wakes the faulting threads unless mode says not to. It
// returns the bytes copied; EAGAIN (events pending: read them and retry)
// and EEXIST (a page is already there) come back as errors wrapping the
// errno with the partial count.
func (u *Uffd) Copy(dst uint64, src []byte, mode uint64) (int64, error) {
	if len(src) == 0 {
		return 0, nil
	}
	c := uffdioCopy{dst: dst, src: uint64(uintptr(unsafe.Pointer(&src[0]))), len: uint64(len(src)), mode: mode}
	err := ioctlPtr(u.fd, uffdioCopyCmd, unsafe.Pointer(&c))
	return partial(c.copied), syscallErr("ioctl(UFFDIO_COPY)", err)
}

// Zeropage maps the zero page over the missing pages of [dst, dst+n).
func (u *Uffd) Zeropage(dst, n uint64, mode uint64) (int64, error) {
	z := uffdioZeropage{rng: uffdioRange{dst, n}, mode: mode}
	err := ioctlPtr(u.fd, uffdioZeropageCmd, unsafe.Pointer(&z))
	return partial(z.zeroed), syscallErr("ioctl(UFFDIO_ZEROPAGE)", err)
}

// Move moves the pages of [src, src+n) to dst in the uffd's address space
// (UFFDIO_MOVE): the source is left unmapped, the page itself is not
// copied. It returns the bytes moved (a hole at src without
// UffdMoveAllowSrcHoles stops it with ENOENT; a page mapped more than
// once, after fork or by KSM, with EBUSY).
func (u *Uffd) Move(dst, src, n uint64, mode uint64) (int64, error) {
	m := uffdioMove{dst: dst, src: src, len: n, mode: mode}
	err := ioctlPtr(u.fd, uffdioMoveCmd, unsafe.Pointer(&m))
	return partial(m.moved), syscallErr("ioctl(UFFDIO_MOVE)", err)
}

// WriteProtect sets (wp) or clears write protection on [start, start+n).
func (u *Uffd) WriteProtect(start, n uint64, wp bool) error {
	w := uffdioWriteProtect{rng: uffdioRange{start, n}}
	if wp {
		w.mode = UffdWriteProtectWP
	}
	return syscallErr("ioctl(UFFDIO_WRITEPROTECT)", retryEINTR(func() error {
		return ioctlPtr(u.fd, uffdioWriteProtectCmd, unsafe.Pointer(&w))
	}))
}

// partial turns the count field of a resolving ioctl (bytes done, or a
// negative errno when nothing was) into bytes done.
func partial(n int64) int64 {
	if n < 0 {
		return 0
	}
	return n
}

// UffdMsg is one message read from a userfaultfd.
type UffdMsg struct {
	Event uint8
	// Pagefault
	Flags   uint64
	Address uint64
	// Fork: the child's new uffd, installed in the reading process.
	ForkFd int
	// Remap: From, To, Len. Remove and Unmap: Start, End (in From, To).
	From, To, Len uint64
}

// UffdMsgSize is the size of struct uffd_msg.
const UffdMsgSize = 32

// ParseUffdMsg decodes one 32-byte uffd_msg.
func ParseUffdMsg(b []byte) (UffdMsg, error) {
	if len(b) < UffdMsgSize {
		return UffdMsg{}, fmt.Errorf("parse uffd_msg: %d bytes", len(b))
	}
	le := binary.LittleEndian
	m := UffdMsg{Event: b[0]}
	a := b[8:]
	switch m.Event {
	case UffdEventPagefault:
		m.Flags, m.Address = le.Uint64(a[0:]), le.Uint64(a[8:])
	case UffdEventFork:
		m.ForkFd = int(int32(le.Uint32(a[0:])))
	case UffdEventRemap:
		m.From, m.To, m.Len = le.Uint64(a[0:]), le.Uint64(a[8:]), le.Uint64(a[16:])
	case UffdEventRemove, UffdEventUnmap:
		m.From, m.To = le.Uint64(a[0:]), le.Uint64(a[8:])
	default:
		return m, fmt.Errorf("parse uffd_msg: unknown event %#x", m.Event)
	}
	return m, nil
}

// ReadMsgs reads as many messages as fit in buf (a multiple of
// UffdMsgSize) without blocking (the uffd must be O_NONBLOCK). It returns
// the bytes read; 0 with a nil error when nothing is pending.
func (u *Uffd) ReadMsgs(buf []byte) (int, error) {
	var n int
	err := retryEINTR(func() error {
		var e error
		n, e = unix.Read(u.fd, buf)
		return e
	})
	if errors.Is(err, unix.EAGAIN) {
		return 0, nil
	}
	if err != nil {
		return 0, syscallErr("read(userfaultfd)", err)
	}
	return n, nil
}

// IsUffd reports whether descriptor fd of this process is a userfaultfd.
func IsUffd(fd int) bool {
	l, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	return err == nil && l == "anon_inode:[userfaultfd]"
}

// OpenDevUserfaultfd opens /dev/userfaultfd (root only by its mode), whose
// USERFAULTFD_IOC_NEW ioctl creates a full userfaultfd for the process that
// calls it, whatever vm.unprivileged_userfaultfd says.
func OpenDevUserfaultfd() (*os.File, error) {
	f, err := os.OpenFile("/dev/userfaultfd", os.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/userfaultfd: %w", err)
	}
	return f, nil
}
