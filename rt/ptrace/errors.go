package ptrace

import (
	"errors"
	"fmt"
	"syscall"
)

var (
	// ErrGone means the tracee (or the thread) exited.
	ErrGone = errors.New("traced process exited")
	// ErrTraced means the target already has a tracer (strace, gdb, a
	// dilation supervisor): a thread has only one.
	ErrTraced = errors.New("process is already traced by another tracer (strace, gdb, vmux run?)")
	// ErrNoSyscallInsn means no syscall instruction to borrow was found.
	ErrNoSyscallInsn = errors.New("no syscall instruction found in the tracee (no vDSO and no readable code)")
	// ErrUnsupportedABI means the thread does not run 64-bit x86 code.
	ErrUnsupportedABI = errors.New("tracee does not run x86-64 code")
)

// CallError is an injected system call that returned an error.
type CallError struct {
	Nr    uint64
	Errno syscall.Errno
}

func (e *CallError) Error() string {
	return fmt.Sprintf("injected syscall %d: %v", e.Nr, e.Errno)
}

func (e *CallError) Unwrap() error { return e.Errno }
