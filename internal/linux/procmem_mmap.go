package linux

import (
	"os"

	"golang.org/x/sys/unix"
)

// MapFile maps the first size bytes of f read-only and shared (the page
// cache itself, no copy). Reading the mapping past the end of a file that
// was truncated meanwhile faults (SIGBUS): callers that must survive that
// read under debug.SetPanicOnFault and recover.
func MapFile(f *os.File, size int64) ([]byte, error) {
	if size <= 0 {
		return nil, nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, syscallErr("mmap", err)
	}
	return b, nil
}

// UnmapFile releases a mapping made by MapFile.
func UnmapFile(b []byte) error {
	if b == nil {
		return nil
	}
	return syscallErr("munmap", unix.Munmap(b))
}
