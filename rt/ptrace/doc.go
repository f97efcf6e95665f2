// Package ptrace is the runtime's one way to act inside another process:
// stop one of its threads, run system calls in it as if it had made them,
// and let it go on exactly where it was. Time dilation uses it at exec time
// (from a syscall-exit stop its tracer already holds); the live Difference
// Engine uses it on processes that have run for hours (attaching from
// nothing, creating a userfaultfd in them, freeing pages in them).
//
// # In a nutshell
//
// Attach seizes one thread of a running process (PTRACE_SEIZE, so nothing
// is signalled and a process already stopped stays so), interrupts it
// (PTRACE_INTERRUPT) and waits for the interrupt stop. The thread may have
// been anywhere: in user code, or blocked in a system call. In the second
// case the kernel reports the call's would-be result, -ERESTARTSYS and its
// relatives, and would restart it on the way back to user mode; Attach
// does what that restart would have done to the saved registers (rip back
// over the 2-byte syscall instruction, rax back to the call number, or
// restart_syscall(2) for -ERESTART_RESTARTBLOCK: the thread's restart
// block is still in the kernel because the same thread continues), so that
// restoring them later re-enters the call, as CRIU's compel does before it
// runs a parasite.
//
// An Injector then runs calls: it loads the call number and arguments into
// the registers, points rip at a borrowed syscall instruction (the vDSO has
// one; its position is all that matters, so two bytes 0f 05 anywhere
// executable will do), resumes with PTRACE_SYSCALL to the syscall-entry
// stop and again to the syscall-exit stop, and reads rax. Every call after
// the first starts from a syscall-exit stop, which is also where
// NewInjector starts for a caller that already holds one (dilate's exec
// hook). Finish writes the saved registers back; Detach lets the thread
// go, delivering the signals that arrived while it was held (they were
// suppressed at their signal-delivery stops so that no handler ran on
// injected registers).
//
// Scratch memory, when a call needs pointers (socketpair, recvmsg), is an
// anonymous mapping made by an injected mmap and removed before Finish.
// InstallFD puts one of the caller's descriptors into the tracee: a
// socketpair made inside it, one end copied out with pidfd_getfd, the
// descriptor sent over it with SCM_RIGHTS and received by an injected
// recvmsg.
//
// # Rules
//
// All ptrace requests for a thread must come from the OS thread that
// seized it: call runtime.LockOSThread before Attach and keep the
// goroutine there until Detach. Injected calls bypass the tracee's seccomp
// filter (PTRACE_O_SUSPEND_SECCOMP) while it is held. A tracee that is
// already traced (strace, gdb, a dilation supervisor) cannot be seized:
// ErrTraced. A tracee that dies meanwhile gives ErrGone.
//
// If the tracer itself dies while a call is being injected (between the
// register load and Finish), the kernel detaches the thread with the
// injected registers and it does not survive; the window is the few
// microseconds of the calls, and holding SIGINT/SIGTERM until Detach is the
// caller's job.
package ptrace
