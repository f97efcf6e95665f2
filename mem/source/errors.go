package source

import (
	"errors"
	"fmt"
)

var (
	// ErrTruncated means a file ends before the data its headers describe.
	ErrTruncated = errors.New("file is truncated")
	// ErrCorrupt means a file's headers are inconsistent.
	ErrCorrupt = errors.New("file is corrupt")
	// ErrProcessGone means the process exited before or while it was read.
	ErrProcessGone = errors.New("process does not exist (or exited)")
	// ErrNoPermission means the caller may not read the process's memory.
	ErrNoPermission = errors.New("no permission to read process memory: run as root (or with ptrace rights over the process)")
	// ErrBadSpec means a SOURCE argument could not be understood.
	ErrBadSpec = errors.New("bad source (want a file path, pid:N, core:PATH, raw:PATH or fc:MEMFILE[,REGIONS.json])")
	// ErrDuplicate means the same file or process was given twice.
	ErrDuplicate = errors.New("source given twice")
	// ErrKernelThread means a pid is a kernel thread, which has no user
	// memory.
	ErrKernelThread = errors.New("a kernel thread: it has no user memory to read (give the pid of a user process)")
	// ErrChanged means a file changed size while it was read.
	ErrChanged = errors.New("file changed while it was read")
)

// Error names the source an error is about and keeps its cause.
type Error struct {
	Source string
	Op     string
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Source, e.Err) }
func (e *Error) Unwrap() error { return e.Err }
