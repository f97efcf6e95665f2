//go:build linux

package linux

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Mount flags and attributes the node sandbox uses, for callers that do
// not import unix.
const (
	MountNoSuid  uintptr = unix.MS_NOSUID
	MountNoDev   uintptr = unix.MS_NODEV
	MountNoExec  uintptr = unix.MS_NOEXEC
	MountRdonly  uintptr = unix.MS_RDONLY
	AttrRdonly   uint64  = unix.MOUNT_ATTR_RDONLY
	AttrNoSuid   uint64  = unix.MOUNT_ATTR_NOSUID
	AttrNoDev    uint64  = unix.MOUNT_ATTR_NODEV
	AttrNoExec   uint64  = unix.MOUNT_ATTR_NOEXEC
	mountRemount uintptr = unix.MS_REMOUNT | unix.MS_BIND
)

// MountFS mounts a new instance of file system fstype (tmpfs, proc,
// sysfs, devpts, mqueue) on target with flags and data.
func MountFS(fstype, target string, flags uintptr, data string) error {
	if err := unix.Mount(fstype, target, fstype, flags, data); err != nil {
		return &os.PathError{Op: "mount " + fstype, Path: target, Err: err}
	}
	return nil
}

// RemountFS changes the flags of the mount at target (e.g. MS_RDONLY once
// a tmpfs is populated); flags replaces the previous ones.
func RemountFS(target string, flags uintptr) error {
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|flags, ""); err != nil {
		return &os.PathError{Op: "remount", Path: target, Err: err}
	}
	return nil
}

// BindMount bind-mounts src on dst (both must exist), recursively if rec,
// then applies flags (MS_RDONLY, MS_NOSUID, ...) to the new mount: the
// kernel ignores them on the bind itself.
func BindMount(src, dst string, rec bool, flags uintptr) error {
	bf := uintptr(unix.MS_BIND)
	if rec {
		bf |= unix.MS_REC
	}
	if err := unix.Mount(src, dst, "", bf, ""); err != nil {
		return &os.PathError{Op: "bind " + src, Path: dst, Err: err}
	}
	if flags == 0 {
		return nil
	}
	if err := unix.Mount("", dst, "", mountRemount|flags, ""); err != nil {
		return &os.PathError{Op: "remount bind", Path: dst, Err: err}
	}
	return nil
}

// DetachMount lazily unmounts the mount at target and everything below
// it (MNT_DETACH). A target that is not a mount point is not an error.
func DetachMount(target string) error {
	err := unix.Unmount(target, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return &os.PathError{Op: "umount", Path: target, Err: err}
}

// SetMountAttrs sets and clears mount attributes (MOUNT_ATTR_*) of the
// mount at path and, with recursive, every mount below it, in one call
// (mount_setattr: the old API remounts one mount at a time).
func SetMountAttrs(path string, recursive bool, set, clear uint64) error {
	flags := 0
	if recursive {
		flags = unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Attr_set: set, Attr_clr: clear}
	if err := unix.MountSetattr(unix.AT_FDCWD, path, uint(flags), &attr); err != nil {
		return &os.PathError{Op: "mount_setattr", Path: path, Err: err}
	}
	return nil
}

// DetachedMount is a copy of a mount tree not attached anywhere yet
// (open_tree OPEN_TREE_CLONE): taken from a path before the caller changes
// its root, attached later with Attach, where that path no longer exists.
type DetachedMount struct{ f *os.File }

// CloneMount returns a detached bind mount of path (a file or directory),
// with the mount attributes set applied (e.g. AttrRdonly).
func CloneMount(path string, set uint64) (*DetachedMount, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, &os.PathError{Op: "open_tree", Path: path, Err: err}
	}
	m := &DetachedMount{f: os.NewFile(uintptr(fd), path)}
	if set != 0 {
		attr := unix.MountAttr{Attr_set: set}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			m.Close()
			return nil, &os.PathError{Op: "mount_setattr", Path: path, Err: err}
		}
	}
	return m, nil
}

// Attach mounts m on target (move_mount) and releases m.
func (m *DetachedMount) Attach(target string) error {
	defer m.Close()
	if err := unix.MoveMount(int(m.f.Fd()), "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount " + m.f.Name(), Path: target, Err: err}
	}
	return nil
}

// Close releases a mount that was never attached (the kernel drops it).
func (m *DetachedMount) Close() error { return m.f.Close() }

// PivotRoot makes newRoot (a mount point) the root of the calling
// process's mount namespace and detaches the old root, so nothing of it
// stays reachable; the working directory becomes the new "/". It uses
// pivot_root(".", "."), which needs no directory for the old root.
func PivotRoot(newRoot string) error {
	if err := unix.Chdir(newRoot); err != nil {
		return &os.PathError{Op: "chdir", Path: newRoot, Err: err}
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return &os.PathError{Op: "pivot_root", Path: newRoot, Err: err}
	}
	// The old root is now mounted on top of the new one, at ".".
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &os.PathError{Op: "umount old root", Path: newRoot, Err: err}
	}
	return syscallErr("chdir", unix.Chdir("/"))
}

// MakeCharDev creates the character device node path (major:minor) with
// mode perm.
func MakeCharDev(path string, perm uint32, major, minor uint32) error {
	if err := unix.Mknod(path, unix.S_IFCHR|perm, int(unix.Mkdev(major, minor))); err != nil {
		return &os.PathError{Op: "mknod", Path: path, Err: err}
	}
	// mknod applies the umask: set the mode exactly.
	return syscallErr(fmt.Sprintf("chmod %s", path), unix.Chmod(path, perm))
}
