package linux

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrNoUnnamedFiles is returned by CreateUnnamed when dir's file system
// cannot hold unnamed files (O_TMPFILE); callers fall back to a named temp.
var ErrNoUnnamedFiles = errors.New("file system does not support O_TMPFILE")

// CreateUnnamed opens a new regular file in dir that has no name (O_TMPFILE)
// until LinkUnnamed gives it one. A process killed before that leaves
// nothing behind: the kernel frees the file with its last descriptor.
func CreateUnnamed(dir string, perm os.FileMode) (*os.File, error) {
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(perm.Perm()))
		return err
	})
	switch {
	case err == unix.EOPNOTSUPP || err == unix.EISDIR:
		return nil, &OpError{Op: "create unnamed file in " + dir, Err: ErrNoUnnamedFiles}
	case err != nil:
		return nil, &OpError{Op: "create unnamed file in " + dir, Err: syscallErr("open", err)}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// LinkUnnamed gives f, from CreateUnnamed, the name path. It fails (EEXIST)
// when path exists: link to a fresh name and rename it over the target.
func LinkUnnamed(f *os.File, path string) error {
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return &OpError{Op: "link " + path, Err: syscallErr("linkat", err)}
	}
	return nil
}
