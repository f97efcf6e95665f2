package linux

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// ErrNotTUN is returned when a file is not a TUN device opened in the mode
// vmux needs (IFF_TUN|IFF_NO_PI, no IFF_VNET_HDR).
var ErrNotTUN = errors.New("not a TUN device in IFF_TUN|IFF_NO_PI mode without IFF_VNET_HDR")

// OpenTUNPolled creates (or attaches to) the TUN interface name in the network
// namespace of the calling thread, in IFF_TUN|IFF_NO_PI mode: every read
// and write is one bare IP packet. The fd is non-blocking and registered
// with Go's poller, so Close unblocks a pending Read. The interface is not
// persistent: it disappears with the last fd. It returns the file and the
// interface name the kernel chose (name may hold a %d pattern or be "").
func OpenTUNPolled(name string) (*os.File, string, error) {
	fd, ifname, err := openTUNFD(name, unix.IFF_TUN|unix.IFF_NO_PI)
	if err != nil {
		return nil, "", err
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), ifname, nil
}

// TUNInfo returns the interface name and flags of an open TUN fd
// (TUNGETIFF), and ErrNotTUN if it is not in IFF_TUN|IFF_NO_PI mode.
func TUNInfo(f *os.File) (string, uint16, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return "", 0, &OpError{Op: "inspecting TUN", Err: err}
	}
	ifr, _ := unix.NewIfreq("")
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr)
	}); err != nil {
		return "", 0, &OpError{Op: "inspecting TUN", Err: err}
	}
	if ierr != nil {
		return "", 0, &OpError{Op: "inspecting TUN " + f.Name(), Err: errors.Join(ErrNotTUN, syscallErr("ioctl TUNGETIFF", ierr))}
	}
	flags := ifr.Uint16()
	if flags&(unix.IFF_TUN|unix.IFF_TAP) != unix.IFF_TUN || flags&unix.IFF_NO_PI == 0 || flags&unix.IFF_VNET_HDR != 0 {
		return ifr.Name(), flags, &OpError{Op: fmt.Sprintf("checking TUN %s (flags %#x)", ifr.Name(), flags), Err: ErrNotTUN}
	}
	return ifr.Name(), flags, nil
}

// OpenTUNPolledInNetns opens a TUN (as OpenTUNPolled) inside the network
// namespace at nsPath (e.g. /run/netns/x or /proc/PID/ns/net).
func OpenTUNPolledInNetns(nsPath, name string) (*os.File, string, error) {
	var f *os.File
	var ifname string
	err := inNetnsThread(nsPath, func() error {
		var err error
		f, ifname, err = OpenTUNPolled(name)
		return err
	})
	if err != nil {
		if f != nil {
			f.Close()
		}
		return nil, "", err
	}
	return f, ifname, nil
}

// OpenTUNVnetInNetns creates the TUN interface name inside the netns at
// nsPath in IFF_TUN|IFF_NO_PI|IFF_VNET_HDR mode (every packet carries a
// virtio-net header, which lets the kernel pass GSO super-packets) and
// returns its raw non-blocking fd, which the caller owns.
func OpenTUNVnetInNetns(nsPath, name string) (int, string, error) {
	fd, ifname := -1, ""
	err := inNetnsThread(nsPath, func() error {
		var err error
		fd, ifname, err = openTUNFD(name, unix.IFF_TUN|unix.IFF_NO_PI|unix.IFF_VNET_HDR)
		return err
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, "", err
	}
	return fd, ifname, nil
}

// openTUNFD opens /dev/net/tun non-blocking and attaches it to name.
func openTUNFD(name string, flags uint16) (int, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, "", &OpError{Op: "opening /dev/net/tun", Err: syscallErr("open", err)}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, "", &OpError{Op: fmt.Sprintf("naming TUN %q", name), Err: err}
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, "", &OpError{Op: fmt.Sprintf("creating TUN %q", name), Err: syscallErr("ioctl TUNSETIFF", err)}
	}
	return fd, ifr.Name(), nil
}

// inNetnsThread runs fn on a locked OS thread switched into the network
// namespace at nsPath, then switches back. If it cannot switch back, the
// thread stays locked so Go retires it with the goroutine.
func inNetnsThread(nsPath string, fn func() error) error {
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &OpError{Op: "opening netns " + nsPath, Err: syscallErr("open", err)}
	}
	defer unix.Close(target)
	runtime.LockOSThread()
	self, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return &OpError{Op: "opening own netns", Err: syscallErr("open", err)}
	}
	defer unix.Close(self)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return &OpError{Op: "entering netns " + nsPath, Err: syscallErr("setns", err)}
	}
	ferr := fn()
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, &OpError{Op: "returning from netns " + nsPath, Err: syscallErr("setns", err)})
	}
	runtime.UnlockOSThread()
	return ferr
}

// PollableTUN returns a non-blocking duplicate of a TUN file registered with
// Go's poller (so Close unblocks a pending Read), and closes f. A TUN opened
// blocking (as os.NewFile of a blocking fd) cannot be unblocked by Close.
func PollableTUN(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, &OpError{Op: "duplicating TUN", Err: err}
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, &OpError{Op: "duplicating TUN", Err: err}
	}
	if derr != nil {
		return nil, &OpError{Op: "duplicating TUN", Err: syscallErr("fcntl F_DUPFD_CLOEXEC", derr)}
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, &OpError{Op: "duplicating TUN", Err: syscallErr("fcntl O_NONBLOCK", err)}
	}
	name := f.Name()
	f.Close()
	return os.NewFile(uintptr(nfd), name), nil
}
