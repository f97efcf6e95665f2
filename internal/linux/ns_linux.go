//go:build linux

package linux

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// NodeNSFlags are the namespaces of a node sandbox: net, pid, mount, uts
// and ipc.
const NodeNSFlags = unix.CLONE_NEWNET | unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC

// UnshareCgroupNS gives the calling thread (and what it forks afterwards)
// a new cgroup namespace rooted at its current cgroups. Namespaces are per
// thread: the caller locks its OS thread and never returns it.
func UnshareCgroupNS() error {
	return syscallErr("unshare(CLONE_NEWCGROUP)", unix.Unshare(unix.CLONE_NEWCGROUP))
}

// SIGKILL, for callers that kill without importing unix.
const SIGKILL = unix.SIGKILL

const procNetFmt = "/proc/%d/ns/net"

// NetnsPath is the path of the network namespace of process pid.
func NetnsPath(pid int) string { return fmt.Sprintf(procNetFmt, pid) }

// NsInode returns the inode number that identifies the namespace of kind
// ("net", "pid", "mnt", ...) of process pid.
func NsInode(pid int, kind string) (uint64, error) {
	var st unix.Stat_t
	p := fmt.Sprintf("/proc/%d/ns/%s", pid, kind)
	if err := unix.Stat(p, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return st.Ino, nil
}

// Sethostname sets the host name of the calling process's uts namespace.
func Sethostname(name string) error {
	return syscallErr("sethostname", unix.Sethostname([]byte(name)))
}

// MakeMountsPrivate stops mount events propagating between the calling
// process's mount namespace and the one it was copied from.
func MakeMountsPrivate() error {
	return syscallErr("mount", unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""))
}

// MountProc mounts a fresh procfs on /proc, so that the process tree seen
// there is the calling process's pid namespace.
func MountProc() error {
	return syscallErr("mount", unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""))
}

// BindMountReadOnly bind-mounts src over dst (both must exist), read-only.
func BindMountReadOnly(src, dst string) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return syscallErr("mount", err)
	}
	// MS_RDONLY is ignored on the first bind: a remount applies it.
	return syscallErr("mount", unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""))
}

// SetCloexec marks fd close-on-exec (for descriptors inherited from a
// parent, which Go leaves inheritable).
func SetCloexec(fd int) { unix.CloseOnExec(fd) }

// SetGroupNice sets the nice value of every thread of every process in the
// calling process's process group (Linux nice values are per thread, and
// PRIO_PGRP is the one call that reaches all of a Go process's threads).
// Threads created later inherit it from their creator.
func SetGroupNice(nice int) error {
	return syscallErr("setpriority", unix.Setpriority(unix.PRIO_PGRP, 0, nice))
}

// LockFile takes an exclusive flock on f, waiting for it; closing f (or
// UnlockFile) releases it. It works on directories too.
func LockFile(f *os.File) error {
	return syscallErr("flock", retryEINTR(func() error { return unix.Flock(int(f.Fd()), unix.LOCK_EX) }))
}
