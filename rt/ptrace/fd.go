package ptrace

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/internal/linux"
)

// x86-64 syscall numbers for InstallFD.
const (
	sysClose      = 3
	sysSendmsg    = 46
	sysRecvmsg    = 47
	sysSocketpair = 53
)

// InstallFD puts a duplicate of this process's descriptor fd into the
// tracee (process pid, held by in) and returns its number there, with
// close-on-exec set. It works whatever the tracee's credentials: the
// descriptor travels over a socketpair created inside the tracee, whose
// one end is copied out with pidfd_getfd, as SCM_RIGHTS.
func InstallFD(in *Injector, pid int, fd int) (int, error) {
	scratch, err := in.Scratch(4096)
	if err != nil {
		return -1, err
	}
	// layout: [0,8) the pair; [64,120) msghdr; [128,144) iovec; [160,161)
	// the byte; [192, 192+cmsg) the control buffer
	const (
		offPair = 0
		offMsg  = 64
		offIov  = 128
		offByte = 160
		offCtl  = 192
	)
	if _, err := in.Call(sysSocketpair, unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0, scratch+offPair); err != nil {
		return -1, fmt.Errorf("install fd: socketpair in the tracee: %w", err)
	}
	var pair [8]byte
	if err := linux.TraceeRead(pid, scratch+offPair, pair[:]); err != nil {
		return -1, fmt.Errorf("install fd: read the pair: %w", err)
	}
	ends := [2]uint64{uint64(binary.LittleEndian.Uint32(pair[0:])), uint64(binary.LittleEndian.Uint32(pair[4:]))}
	defer func() {
		_, _ = in.Call(sysClose, ends[0])
		_, _ = in.Call(sysClose, ends[1])
	}()
	pidfd, err := linux.PidfdOpen(pid)
	if err != nil {
		return -1, fmt.Errorf("install fd: %w", err)
	}
	defer unix.Close(pidfd)
	sender, err := linux.PidfdGetfd(pidfd, int(ends[0]))
	if err != nil {
		return -1, fmt.Errorf("install fd: %w", err)
	}
	err = unix.Sendmsg(sender, []byte{0}, unix.UnixRights(fd), nil, 0)
	unix.Close(sender)
	if err != nil {
		return -1, fmt.Errorf("install fd: sendmsg: %w", err)
	}
	ctlLen := uint64(unix.CmsgSpace(4))
	var msg [56]byte
	le := binary.LittleEndian
	le.PutUint64(msg[16:], scratch+offIov) // msg_iov
	le.PutUint64(msg[24:], 1)              // msg_iovlen
	le.PutUint64(msg[32:], scratch+offCtl) // msg_control
	le.PutUint64(msg[40:], ctlLen)         // msg_controllen
	var iov [16]byte
	le.PutUint64(iov[0:], scratch+offByte)
	le.PutUint64(iov[8:], 1)
	if err := linux.TraceeWrite(pid, scratch+offMsg, msg[:]); err != nil {
		return -1, fmt.Errorf("install fd: write msghdr: %w", err)
	}
	if err := linux.TraceeWrite(pid, scratch+offIov, iov[:]); err != nil {
		return -1, fmt.Errorf("install fd: write iovec: %w", err)
	}
	if _, err := in.Call(sysRecvmsg, ends[1], scratch+offMsg, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT); err != nil {
		return -1, fmt.Errorf("install fd: recvmsg in the tracee: %w", err)
	}
	ctl := make([]byte, ctlLen)
	if err := linux.TraceeRead(pid, scratch+offCtl, ctl); err != nil {
		return -1, fmt.Errorf("install fd: read the control message: %w", err)
	}
	cms, err := unix.ParseSocketControlMessage(ctl)
	if err != nil || len(cms) != 1 {
		return -1, fmt.Errorf("install fd: no control message received (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&cms[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("install fd: no descriptor received (%v)", err)
	}
	return fds[0], nil
}
