// Package linux is the one place in vmux that speaks raw syscalls and ioctls
// (golang.org/x/sys/unix and unsafe). Everything above it uses typed wrappers
// that retry EINTR where that is safe and return errors that keep the errno
// (wrapped in *os.SyscallError) so callers can classify them with errors.Is.
//
// Files are grouped by mechanism: ptrace and seccomp for the time-dilation
// supervisor, process memory (process_vm_readv, /proc maps) for the
// Difference Engine's live sources, and namespaces/TUN for node sandboxes.
package linux
