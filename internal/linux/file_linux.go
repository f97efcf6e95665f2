//go:build linux

package linux

import (
	"os"

	"golang.org/x/sys/unix"
)

// PunchHole frees the blocks of f in [off, off+n) (they read as zero after),
// keeping its size: on tmpfs the memory goes back at once.
func PunchHole(f *os.File, off, n int64) error {
	return syscallErr("fallocate", retryEINTR(func() error {
		return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	}))
}

// AllocatedBytes is the storage f really holds (st_blocks), which for a
// sparse file with holes punched is less than its size.
func AllocatedBytes(f *os.File) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, syscallErr("fstat", err)
	}
	return st.Blocks * 512, nil
}

// OpenOwnerOnly opens (creating if create) a regular file at path for
// reading and writing, refusing symbolic links (O_NOFOLLOW) and anything
// but a regular file, with mode 0600.
func OpenOwnerOnly(path string, create bool) (*os.File, error) {
	flags := os.O_RDWR | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = &OpError{Op: "open " + path, Err: unix.EINVAL}
		}
		return nil, err
	}
	return f, nil
}

// Dup2 makes newfd a copy of oldfd (dup3 without flags).
func Dup2(oldfd, newfd int) error { return syscallErr("dup3", unix.Dup3(oldfd, newfd, 0)) }
