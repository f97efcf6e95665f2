package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Dir is an output directory that only this user can write: files created
// in it cannot be redirected by anyone else.
type Dir struct {
	root *os.Root
	path string
}

// OutputDir creates path as a new directory, mode 0700 (its parent must
// exist), or opens it if it exists and is safe: a directory (not a symlink
// to one) owned by this process's effective user and not writable by group
// or others. The check is made again on the opened directory, so a
// directory swapped in between is caught.
func OutputDir(path string) (*Dir, error) {
	fail := func(err error) (*Dir, error) {
		return nil, &PathError{Op: "open output directory", Path: path, Err: err}
	}
	created := true
	if err := os.Mkdir(path, 0o700); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return fail(err)
		}
		created = false
	}
	before, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	if err := safeDir(before); err != nil {
		return fail(err)
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return fail(err)
	}
	after, err := root.Stat(".")
	if err == nil && !os.SameFile(before, after) {
		err = fmt.Errorf("%w: replaced while it was opened", ErrUnsafeDir)
	}
	if err == nil {
		err = safeDir(after)
	}
	if err != nil {
		root.Close()
		if created {
			os.Remove(path)
		}
		return fail(err)
	}
	return &Dir{root: root, path: path}, nil
}

func safeDir(st fs.FileInfo) error {
	if !st.IsDir() {
		return fmt.Errorf("%w (%s)", ErrNotRegular, typeName(st.Mode()))
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: no owner known", ErrUnsafeDir)
	}
	if int(sys.Uid) != os.Geteuid() || st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w (owner uid %d, mode %v): give a new directory or one only you can write", ErrUnsafeDir, sys.Uid, st.Mode().Perm())
	}
	return nil
}

// Path is the directory's path as given.
func (d *Dir) Path() string { return d.path }

// Create creates name (a single path element) in the directory, owner-only
// (0600), replacing whatever entry had that name: the old entry is removed,
// not written through, and the new file is created with O_EXCL|O_NOFOLLOW.
func (d *Dir) Create(name string) (*os.File, error) {
	if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, &PathError{Op: "replace", Path: d.path + "/" + name, Err: err}
	}
	f, err := d.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, &PathError{Op: "create", Path: d.path + "/" + name, Err: err}
	}
	return f, nil
}

// Remove removes name from the directory (not following a symlink).
func (d *Dir) Remove(name string) error { return d.root.Remove(name) }

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }
