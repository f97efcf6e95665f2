//go:build linux

package linux

import "golang.org/x/sys/unix"

// SandboxSeccomp is the filter of a node sandbox's processes: what their
// bounded capabilities do not already refuse and a container runtime's
// default profile does (containerd's and Docker's):
//   - new user namespaces (unshare or clone with CLONE_NEWUSER): inside one
//     a process holds every capability over new namespaces it creates, the
//     largest kernel attack surface open to an unprivileged process;
//   - clone3, whose flags a classic filter cannot read: ENOSYS, on which
//     glibc and Go fall back to clone (as under Docker's profile);
//   - the kernel keyrings (keyctl, add_key, request_key: not namespaced);
//   - io_uring (a record of kernel bugs; Docker refuses it too).
//
// Other architectures' system calls (i386, x32) fail with ENOSYS: their
// numbers would bypass these rules. Everything else is allowed.
func SandboxSeccomp() (SeccompProgram, error) {
	eperm := SeccompErrno(unix.EPERM)
	newUser := []SeccompCond{{Arg: 0, Kind: CondMaskedIn, Mask: unix.CLONE_NEWUSER, Values: []uint32{unix.CLONE_NEWUSER}}}
	rules := []SeccompRule{
		{Nr: unix.SYS_UNSHARE, Conds: newUser, Action: eperm},
		{Nr: unix.SYS_CLONE, Conds: newUser, Action: eperm}, // x86-64: flags are the first argument
		{Nr: unix.SYS_CLONE3, Action: SeccompErrno(unix.ENOSYS)},
		{Nr: unix.SYS_KEYCTL, Action: eperm},
		{Nr: unix.SYS_ADD_KEY, Action: eperm},
		{Nr: unix.SYS_REQUEST_KEY, Action: eperm},
		{Nr: unix.SYS_IO_URING_SETUP, Action: eperm},
		{Nr: unix.SYS_IO_URING_ENTER, Action: eperm},
		{Nr: unix.SYS_IO_URING_REGISTER, Action: eperm},
	}
	return AssembleSeccomp(rules, SeccompAllow, SeccompErrno(unix.ENOSYS))
}
