//go:build linux

package testutil

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Nobody is the unprivileged uid and gid tests act as.
const Nobody = 65534

// DialUnixAs connects to the unix socket at path (typ unix.SOCK_STREAM or
// SOCK_SEQPACKET) with the credentials of uid/gid, as an unprivileged user
// on the host would, without a helper process: on a dedicated OS thread
// whose credentials alone are changed (Linux credentials are per thread),
// so the path permission check and the peer credentials the listener sees
// are uid's. The thread is never reused: it exits with its goroutine.
func DialUnixAs(path string, typ, uid, gid int) (*net.UnixConn, error) {
	type result struct {
		c   *net.UnixConn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		ch <- func() result {
			// Raw per-thread calls: unix.Setresuid would change every thread.
			if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
				return result{err: os.NewSyscallError("setgroups", e)}
			}
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
				return result{err: os.NewSyscallError("setresgid", e)}
			}
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
				return result{err: os.NewSyscallError("setresuid", e)}
			}
			fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return result{err: os.NewSyscallError("socket", err)}
			}
			if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
				unix.Close(fd)
				return result{err: &os.PathError{Op: "connect", Path: path, Err: err}}
			}
			f := os.NewFile(uintptr(fd), path)
			defer f.Close()
			c, err := net.FileConn(f)
			if err != nil {
				return result{err: err}
			}
			uc, ok := c.(*net.UnixConn)
			if !ok {
				c.Close()
				return result{err: fmt.Errorf("dial %s: not a unix socket", path)}
			}
			return result{c: uc}
		}()
	}()
	r := <-ch
	return r.c, r.err
}
