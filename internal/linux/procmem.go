package linux

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// ReadProcessMemory copies len(buf) bytes of process pid's address space,
// starting at addr, into buf with one process_vm_readv call (one local and one
// remote iovec, so a batch of any size costs one syscall). It returns how many
// bytes were copied. A short count means the page at addr+n could not be read
// (unmapped, or PROT_NONE); the caller decides whether to skip it. errors.Is
// works on the errno: unix.ESRCH when the process is gone, unix.EPERM when the
// caller lacks ptrace rights over it, unix.EFAULT when nothing at addr is
// readable.
func ReadProcessMemory(pid int, addr uint64, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	local := []unix.Iovec{{Base: &buf[0]}}
	local[0].SetLen(len(buf))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	var n int
	err := retryEINTR(func() error {
		var e error
		n, e = unix.ProcessVMReadv(pid, local, remote, 0)
		return e
	})
	if err != nil {
		return 0, syscallErr("process_vm_readv", err)
	}
	return n, nil
}

// IsProcessGone reports whether err says the target process no longer exists.
func IsProcessGone(err error) bool { return errors.Is(err, unix.ESRCH) }

// IsUnreadable reports whether err says the address range is not readable
// (unmapped or protected) rather than the process being gone.
func IsUnreadable(err error) bool {
	return errors.Is(err, unix.EFAULT) || errors.Is(err, unix.EIO)
}

// NextData returns the offset of the first byte at or after off that lies in
// a data extent of f (SEEK_DATA). ok is false when only a hole remains up to
// the end of the file. Filesystems without hole support report the whole file
// as data, which is correct, only slower.
func NextData(f *os.File, off int64) (next int64, ok bool, err error) {
	err = retryEINTR(func() error {
		var e error
		next, e = unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		return e
	})
	if errors.Is(err, unix.ENXIO) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, syscallErr("lseek SEEK_DATA", err)
	}
	return next, true, nil
}

// NextHole returns the offset of the first hole at or after off (SEEK_HOLE);
// the end of the file counts as a hole.
func NextHole(f *os.File, off int64) (int64, error) {
	var next int64
	err := retryEINTR(func() error {
		var e error
		next, e = unix.Seek(int(f.Fd()), off, unix.SEEK_HOLE)
		return e
	})
	if err != nil {
		return 0, syscallErr("lseek SEEK_HOLE", err)
	}
	return next, nil
}
