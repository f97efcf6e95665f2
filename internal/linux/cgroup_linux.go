//go:build linux

package linux

import (
	"os"

	"golang.org/x/sys/unix"
)

// IsCgroup2 reports whether path is the mount point of a cgroup v2 (unified)
// hierarchy.
func IsCgroup2(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC, nil
}

// IsBusy reports whether err is EBUSY (for example rmdir of a cgroup that
// still has processes).
func IsBusy(err error) bool { return err != nil && errorsIs(err, unix.EBUSY) }
