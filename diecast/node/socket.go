package node

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// listenFd is the exec socket's listening descriptor in the node's init.
const listenFd = 4

// listenExec creates a node's exec socket at path and returns its listening
// descriptor for init to inherit. Whoever can connect to it runs commands
// as root in the node, so it is created mode 0600 (whatever the umask) in a
// directory that must already be owner-only (0700) and owned by this user:
// nobody else can reach it even between bind and chmod. Init also checks
// every peer (allowPeer).
func listenExec(path string) (*os.File, error) {
	dir := filepath.Dir(path)
	if err := checkPrivateDir(dir); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("remove stale exec socket: %w", err)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("listen exec socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // the path outlives this listener: init serves it
	defer ln.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("restrict exec socket: %w", err)
	}
	f, err := ln.File()
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("listen exec socket: %w", err)
	}
	return f, nil
}

// checkPrivateDir refuses a socket directory that is a symlink, not owned
// by the caller, or open to group or others.
func checkPrivateDir(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check exec socket directory: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	switch {
	case !st.IsDir():
		return fmt.Errorf("%w: exec socket directory %s is not a directory", ErrBadConfig, dir)
	case !ok || int(sys.Uid) != os.Geteuid():
		return fmt.Errorf("%w: exec socket directory %s is not owned by uid %d", ErrBadConfig, dir, os.Geteuid())
	case st.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%w: exec socket directory %s is mode %04o: make it 0700", ErrBadConfig, dir, st.Mode().Perm())
	}
	return nil
}

// allowPeer is init's check of who connected to the exec socket: root, and
// from outside the node (a process of the node sees a pid of its own pid
// namespace; one outside sees 0). A command started through init runs with
// init's authority, so no process of the node, and nobody but root, may ask.
func allowPeer(p linux.Ucred) error {
	if p.Uid != 0 {
		return fmt.Errorf("%w: uid %d is not root", ErrDenied, p.Uid)
	}
	if p.Pid != 0 {
		return fmt.Errorf("%w: pid %d is a process of this node", ErrDenied, p.Pid)
	}
	return nil
}

// inheritListener takes over the exec socket Start created (listenFd).
func inheritListener() (*net.UnixListener, error) {
	f := os.NewFile(listenFd, "exec-socket")
	if f == nil {
		return nil, fmt.Errorf("%w: no exec socket on fd %d", ErrNotInit, listenFd)
	}
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("inherit exec socket: %w", err)
	}
	ln, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("%w: fd %d is not a unix socket", ErrNotInit, listenFd)
	}
	ln.SetUnlinkOnClose(false) // Stop and Destroy remove the path
	return ln, nil
}

// admit checks the peer of a new exec connection. A refused peer's request
// is read unparsed (its descriptors closed) so that the client, whose send
// would otherwise race the close, gets the reason; the caller closes c.
func (in *initProc) admit(c *net.UnixConn) bool {
	p, err := linux.PeerCred(c)
	if err == nil {
		err = allowPeer(p)
	}
	if err == nil {
		return true
	}
	in.log.Warn("exec request refused", "err", err)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, files, rerr := linux.RecvWithFds(c, make([]byte, 512)); rerr == nil {
		closeAll(files)
	}
	sendReply(c, execReply{Error: err.Error(), Denied: true})
	return false
}

// goFd is where init waits for Start's byte saying it is in its cgroup.
const goFd = 5

// awaitStart blocks until Start has moved init into the node's cgroup.
func awaitStart() error {
	f := os.NewFile(goFd, "start")
	if f == nil {
		return fmt.Errorf("%w: no start pipe on fd %d", ErrNotInit, goFd)
	}
	defer f.Close()
	var b [1]byte
	if n, err := f.Read(b[:]); n != 1 {
		return fmt.Errorf("%w: wait for the cgroup: %v", ErrInitFailed, err)
	}
	return nil
}
