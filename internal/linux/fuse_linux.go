//go:build linux

package linux

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// OpenFuse opens /dev/fuse (a new FUSE connection once mounted), close on
// exec.
func OpenFuse() (*os.File, error) {
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/dev/fuse", Err: err}
	}
	return os.NewFile(uintptr(fd), "/dev/fuse"), nil
}

// MountFuse mounts the FUSE connection dev on target (a directory), no
// setuid, no devices, for every user of the mount namespace
// (allow_other), with the kernel checking permissions against the
// attributes the server reports (default_permissions). Only the caller's
// mount namespace sees it.
func MountFuse(dev *os.File, target, source string) error {
	data := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", dev.Fd())
	if err := unix.Mount(source, target, "fuse."+source, unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return &os.PathError{Op: "mount fuse", Path: target, Err: err}
	}
	return nil
}

// OpenDir opens a directory without following a symbolic link at its last
// component (O_DIRECTORY|O_NOFOLLOW), close on exec.
func OpenDir(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// Nanosleep blocks the calling OS thread for d (nanosleep, resumed after
// a signal): precise to the kernel's timer and the thread's slack, where
// Go's timers round a short sleep up to a millisecond.
func Nanosleep(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for ts.Sec > 0 || ts.Nsec > 0 {
		var rem unix.Timespec
		if err := unix.Nanosleep(&ts, &rem); err != unix.EINTR {
			return
		}
		ts = rem
	}
}
