package linux

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MemfdPrefix is how /proc/PID/fd links name a memfd: "/memfd:NAME (deleted)".
const MemfdPrefix = "/memfd:"

// MemfdCreate creates an anonymous shared-memory file of size bytes named
// name (visible as /memfd:name in /proc/PID/fd), close-on-exec, sealable.
// Seal it with MemfdSeal once its owner has mapped what it writes.
func MemfdCreate(name string, size int64) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, &OpError{Op: "creating memfd " + name, Err: syscallErr("memfd_create", err)}
	}
	f := os.NewFile(uintptr(fd), MemfdPrefix+name)
	if err := retryEINTR(func() error { return unix.Ftruncate(fd, size) }); err != nil {
		f.Close()
		return nil, &OpError{Op: "sizing memfd " + name, Err: syscallErr("ftruncate", err)}
	}
	return f, nil
}

// MemfdSealReadOnly seals f for good against resizing (no process mapping
// it can shrink it under the others, which would turn their reads into
// SIGBUS) and against every future write: write(2) and new shared writable
// mappings fail through any descriptor, while mappings made before keep
// writing (F_SEAL_FUTURE_WRITE). No seal can be added or removed after.
func MemfdSealReadOnly(f *os.File) error {
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_FUTURE_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return &OpError{Op: "sealing memfd " + f.Name(), Err: syscallErr("fcntl(F_ADD_SEALS)", err)}
	}
	return nil
}

// ReopenReadOnly opens a new read-only file description of f (through
// /proc/self/fd), to hand out where f's access mode must not travel.
func ReopenReadOnly(f *os.File) (*os.File, error) {
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &OpError{Op: "reopening " + f.Name() + " read-only", Err: syscallErr("open", err)}
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// MemfdName returns NAME if the /proc/PID/fd link target is a memfd.
func MemfdName(link string) (string, bool) {
	s, ok := strings.CutPrefix(link, MemfdPrefix)
	if !ok {
		return "", false
	}
	return strings.TrimSuffix(s, " (deleted)"), true
}

// MmapShared maps size bytes of f shared, read-only or read-write.
func MmapShared(f *os.File, size int, writable bool) ([]byte, error) {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	b, err := unix.Mmap(int(f.Fd()), 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, &OpError{Op: "mapping " + f.Name(), Err: syscallErr("mmap", err)}
	}
	return b, nil
}

// Munmap unmaps a mapping made by MmapShared.
func Munmap(b []byte) error {
	return syscallErr("munmap", unix.Munmap(b))
}

// ClockGettime reads clock id with the clock_gettime syscall, in ns.
func ClockGettime(id int32) (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0, syscallErr("clock_gettime", err)
	}
	return ts.Nano(), nil
}

// ProcessAlive reports whether pid exists (signal 0; EPERM means it does).
func ProcessAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

// FileInode returns the inode number of path (following symlinks), to tell
// whether two /proc/PID/fd links name the same memfd.
func FileInode(path string) (uint64, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, false
	}
	return st.Ino, true
}
