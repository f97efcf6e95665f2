package dilate

import (
	"errors"
	"fmt"
)

var (
	// ErrCommand reports a command that cannot be run: not found, not a
	// regular executable file.
	ErrCommand = errors.New("command cannot be run")
	// ErrSetuid reports a setuid/setgid program: the seccomp filter needs
	// no_new_privs, under which such a program would run without its
	// privileges.
	ErrSetuid = errors.New("setuid/setgid programs cannot be dilated (no_new_privs would drop their privileges); run them as the target user instead")
	// ErrFileCaps reports a program whose file capabilities (setcap)
	// grant what the caller does not have: under no_new_privs (and ptrace)
	// the kernel would run it without them.
	ErrFileCaps = errors.New("programs with file capabilities the caller lacks cannot be dilated (no_new_privs would drop them); run vmux as root, or without setcap on the program")
	// ErrAlreadyTraced reports that the launcher could not be traced
	// because vmux itself runs under a debugger or tracer.
	ErrAlreadyTraced = errors.New("the program is already traced (is vmux running under strace or gdb?); run vmux outside the tracer")
	// ErrUsesPtrace reports a dilated program that called ptrace: it cannot
	// trace while vmux traces it.
	ErrUsesPtrace = errors.New("the program uses ptrace itself, which cannot work while vmux traces it (debuggers and tracers cannot run dilated)")
	// ErrUnsupportedABI reports a 32-bit or x32 program.
	ErrUnsupportedABI = errors.New("only x86-64 programs can be dilated (32-bit and x32 are not supported)")
	// ErrClosed is returned by Wait after Close stopped the run.
	ErrClosed = errors.New("run closed")
	// ErrBusy reports a supervisor whose trace thread has too much queued.
	ErrBusy = errors.New("supervisor busy")
	// ErrBadConfig reports a missing or invalid Config field.
	ErrBadConfig = errors.New("invalid dilation config")
)

// CommandError names the command that could not be run and why.
type CommandError struct {
	Path string
	Err  error // ErrCommand or ErrSetuid, possibly wrapping an os error
}

func (e *CommandError) Error() string { return fmt.Sprintf("checking command %q: %v", e.Path, e.Err) }
func (e *CommandError) Unwrap() error { return e.Err }

// TraceeError reports a failure while handling one tracee thread; the run
// is torn down (every tracee killed) when one happens.
type TraceeError struct {
	Tid int
	Op  string // what the supervisor was doing
	Err error
}

func (e *TraceeError) Error() string { return fmt.Sprintf("%s (tid %d): %v", e.Op, e.Tid, e.Err) }
func (e *TraceeError) Unwrap() error { return e.Err }
