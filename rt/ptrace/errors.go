package ptrace

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
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

// GoneError is a thread that exited while it was being injected into. Its
// wait status was taken by the injector's wait: a tracer that keeps books
// of its tracees' exits (dilate's) replays it. errors.Is(err, ErrGone).
type GoneError struct {
	Tid    int
	Status linux.WaitStatus // valid if Reaped
	Reaped bool             // the injector's wait took its exit status
}

func (e *GoneError) Error() string { return fmt.Sprintf("thread %d: %v", e.Tid, ErrGone) }

// Is makes errors.Is(err, ErrGone) hold.
func (e *GoneError) Is(target error) bool { return target == ErrGone }
