//go:build linux

package linux

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Cap is a Linux capability number (unix.CAP_*).
type Cap uint

// The capabilities a node sandbox names (the rest are dropped by number).
const (
	CapChown          = Cap(unix.CAP_CHOWN)
	CapDacOverride    = Cap(unix.CAP_DAC_OVERRIDE)
	CapDacReadSearch  = Cap(unix.CAP_DAC_READ_SEARCH)
	CapFowner         = Cap(unix.CAP_FOWNER)
	CapFsetid         = Cap(unix.CAP_FSETID)
	CapKill           = Cap(unix.CAP_KILL)
	CapSetgid         = Cap(unix.CAP_SETGID)
	CapSetuid         = Cap(unix.CAP_SETUID)
	CapSetpcap        = Cap(unix.CAP_SETPCAP)
	CapNetBindService = Cap(unix.CAP_NET_BIND_SERVICE)
	CapNetAdmin       = Cap(unix.CAP_NET_ADMIN)
	CapNetRaw         = Cap(unix.CAP_NET_RAW)
	CapSysChroot      = Cap(unix.CAP_SYS_CHROOT)
	CapAuditWrite     = Cap(unix.CAP_AUDIT_WRITE)
	CapSysAdmin       = Cap(unix.CAP_SYS_ADMIN)
	CapSysModule      = Cap(unix.CAP_SYS_MODULE)
	CapSysRawio       = Cap(unix.CAP_SYS_RAWIO)
	CapSysPtrace      = Cap(unix.CAP_SYS_PTRACE)
	CapSysTime        = Cap(unix.CAP_SYS_TIME)
	CapSysBoot        = Cap(unix.CAP_SYS_BOOT)
	CapMknod          = Cap(unix.CAP_MKNOD)
	CapBPF            = Cap(unix.CAP_BPF)
)

// CapSet is a set of capabilities as the kernel's 64-bit masks hold them.
type CapSet uint64

// CapsOf returns the set holding caps.
func CapsOf(caps ...Cap) CapSet {
	var s CapSet
	for _, c := range caps {
		s |= 1 << c
	}
	return s
}

// Has reports whether c is in s.
func (s CapSet) Has(c Cap) bool { return s&(1<<c) != 0 }

// LastCap is the highest capability this kernel knows
// (/proc/sys/kernel/cap_last_cap).
func LastCap() (Cap, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read cap_last_cap: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("read cap_last_cap: %q", b)
	}
	return Cap(n), nil
}

// BoundThreadCaps confines the calling thread, and every process it forks
// afterwards, to keep: it drops every other capability from the bounding
// set (so no exec, even of a setuid-root or file-capability program, can
// regain one), clears the ambient set, and sets the permitted, effective
// and inheritable sets to keep. Credentials are per thread in Linux: the
// caller locks its OS thread and never returns it to the Go scheduler.
func BoundThreadCaps(keep CapSet) error {
	last, err := LastCap()
	if err != nil {
		return err
	}
	for c := Cap(0); c <= last; c++ {
		if keep.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return syscallErr(fmt.Sprintf("prctl(PR_CAPBSET_DROP, %d)", c), err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return syscallErr("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := range data {
		m := uint32(uint64(keep) >> (32 * i))
		data[i] = unix.CapUserData{Effective: m, Permitted: m, Inheritable: m}
	}
	return syscallErr("capset", unix.Capset(&hdr, &data[0]))
}
