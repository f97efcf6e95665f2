package linux

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"
)

// vfs_cap_data revisions (linux/capability.h): the security.capability
// xattr of a file with capabilities (setcap cap_net_raw+ep FILE).
const (
	vfsCapRevisionMask = 0xFF000000
	vfsCapRevision1    = 0x01000000 // one 32-bit set
	vfsCapRevision2    = 0x02000000 // two 32-bit sets
	vfsCapRevision3    = 0x03000000 // revision 2 plus the namespace's root uid
)

// FileCapabilities returns the permitted capabilities the security.capability
// xattr of path grants at exec (bit n = capability n), and whether it has
// one. A file without the attribute has none; an attribute that cannot be
// parsed counts as granting every capability (refuse rather than guess).
func FileCapabilities(path string) (permitted uint64, ok bool, err error) {
	buf := make([]byte, 64)
	n, err := unix.Getxattr(path, "security.capability", buf)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, &OpError{Op: "read file capabilities of " + path, Err: syscallErr("getxattr", err)}
	}
	b := buf[:n]
	if len(b) < 8 {
		return ^uint64(0), true, nil
	}
	magic := binary.LittleEndian.Uint32(b)
	lo := uint64(binary.LittleEndian.Uint32(b[4:]))
	switch magic & vfsCapRevisionMask {
	case vfsCapRevision1:
		return lo, true, nil
	case vfsCapRevision2, vfsCapRevision3:
		if len(b) < 16 {
			return ^uint64(0), true, nil
		}
		hi := uint64(binary.LittleEndian.Uint32(b[12:]))
		return lo | hi<<32, true, nil
	}
	return ^uint64(0), true, nil
}

// EffectiveCapabilities returns this thread's effective capability set.
func EffectiveCapabilities() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, syscallErr("capget", err)
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, nil
}
