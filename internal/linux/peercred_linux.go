//go:build linux

package linux

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Ucred is who is at the other end of a unix socket (SO_PEERCRED), with
// the pid translated into this process's pid namespace (0 if the peer's
// process is not visible in it).
type Ucred struct {
	Pid      int
	Uid, Gid uint32
}

// PeerCred returns the credentials of c's peer as the kernel recorded
// them when the connection was made (or the socket pair created).
func PeerCred(c *net.UnixConn) (Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Ucred{}, fmt.Errorf("reading peer credentials: %w", err)
	}
	var uc *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		uc, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Ucred{}, fmt.Errorf("reading peer credentials: %w", err)
	}
	if serr != nil {
		return Ucred{}, syscallErr("getsockopt(SO_PEERCRED)", serr)
	}
	return Ucred{Pid: int(uc.Pid), Uid: uc.Uid, Gid: uc.Gid}, nil
}

// TracerPid returns the pid of the process tracing pid (0: none), from
// /proc/PID/status.
func TracerPid(pid int) (int, error) {
	v, err := procStatusField(pid, "TracerPid")
	if err != nil {
		return 0, err
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil {
		return 0, fmt.Errorf("parsing TracerPid of %d: %w", pid, err)
	}
	return n, nil
}
