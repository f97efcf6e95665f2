// Package safefile opens the files vmux reads and writes on behalf of a user
// as if every path came from someone hostile.
//
// In a nutshell: an input is opened without blocking (a FIFO or a device
// must not hang vmux in open(2)), checked with fstat to be a regular file
// (not /dev/zero, a FIFO, a socket or a directory) and read through a limit
// that is enforced while reading, not after; an output file is only ever
// put where nothing but a regular file (or nothing) was, so that writing a
// store never replaces /dev/null or its own input; an output directory is
// one vmux created (0700), or an existing one only this user can write, and
// files in it are created owner-only with O_CREAT|O_EXCL|O_NOFOLLOW through
// an os.Root, so that a symlink planted there by another user is never
// followed. runc (securejoin, O_PATH|O_NOFOLLOW) and the kernel's
// protected_symlinks/protected_fifos settings guard against the same
// attacks.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

var (
	// ErrNotRegular means a path names something other than a regular
	// file (a device, FIFO, socket, directory or symlink).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge means an input is larger than its bound.
	ErrTooLarge = errors.New("file too large")
	// ErrSameFile means an output path names one of the inputs.
	ErrSameFile = errors.New("output is one of the inputs")
	// ErrUnsafeDir means an output directory exists but another user could
	// plant files in it (not ours, or writable by group or others).
	ErrUnsafeDir = errors.New("directory is writable by other users or not owned by this user")
)

// PathError names the path and the operation a check failed on.
type PathError struct {
	Op   string
	Path string
	Err  error
}

func (e *PathError) Error() string { return e.Op + " " + e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

// OpenRegular opens path for reading if it is a regular file (following
// symlinks, as any reader does). It never blocks in open: a FIFO with no
// writer or a device fails at once.
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err // *fs.PathError names the file
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, &PathError{Op: "stat", Path: path, Err: err}
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, &PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, typeName(st.Mode()))}
	}
	return f, st, nil
}

// ReadRegular reads all of a regular file of at most max bytes. The bound
// holds while reading: a file that grows past it is refused after max+1
// bytes, never read whole.
func ReadRegular(path string, max int64) ([]byte, error) {
	f, st, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > max {
		return nil, &PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, st.Size(), max)}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(b)) > max {
		return nil, &PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)}
	}
	return b, nil
}

// CheckOutput fails unless path is absent or a regular file (not followed
// if a symlink: a symlink is refused too) that is none of inputs. It is
// what a writer that renames a temp file over path must check first:
// rename(2) replaces a device node, a FIFO or an input as readily as a
// stale output.
func CheckOutput(path string, inputs ...fs.FileInfo) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &PathError{Op: "check output", Path: path, Err: err}
	}
	if !st.Mode().IsRegular() {
		return &PathError{Op: "check output", Path: path, Err: fmt.Errorf("%w (%s): give a new file or a regular file to replace", ErrNotRegular, typeName(st.Mode()))}
	}
	for _, in := range inputs {
		if in != nil && os.SameFile(st, in) {
			return &PathError{Op: "check output", Path: path, Err: fmt.Errorf("%w (%s): it would be replaced before it is read", ErrSameFile, in.Name())}
		}
	}
	return nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "not a regular file"
}
