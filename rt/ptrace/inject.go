package ptrace

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// x86-64 syscall numbers the injector itself uses.
const (
	sysMmap   = 9
	sysMunmap = 11
)

// mmap constants (x86-64 Linux ABI).
const (
	ProtRead   = 0x1
	ProtWrite  = 0x2
	MapPrivate = 0x02
	MapAnon    = 0x20
)

// StopTimeout bounds each wait for the tracee's next stop; a thread that
// stays in an uninterruptible sleep longer makes a call fail rather than
// hang the caller.
var StopTimeout = 10 * time.Second

// Injector runs system calls inside one stopped thread of a tracee and
// gives the thread back its registers afterwards. Every method must be
// called from the OS thread that holds the tracee (see the package doc).
type Injector struct {
	tid   int
	insn  uint64
	saved linux.Regs // restored by Finish
	sigs  []int      // signals suppressed meanwhile, for the caller to deliver

	scratch, scratchLen uint64
	code                uint64 // Batch's code page
	table, tableLen     uint64 // Batch's call table
	started             uint64 // the call Start made, until Wait
	blocking            bool   // SetBlocking
	finished            bool
}

// NewInjector starts injecting into thread tid, which the caller already
// holds stopped: at a syscall-exit stop (its options must include
// PTRACE_O_TRACESYSGOOD) or at an interrupt or event stop. regs are the
// registers Finish restores; insn is the address of a syscall instruction
// mapped executable in the tracee (FindSyscallInsn finds one). A caller
// stopped inside an interrupted system call passes registers adjusted with
// RestartRegs, as Attach does.
func NewInjector(tid int, regs linux.Regs, insn uint64) *Injector {
	return &Injector{tid: tid, saved: regs, insn: insn}
}

// Tid is the thread injected into.
func (in *Injector) Tid() int { return in.tid }

// Saved returns the registers Finish restores.
func (in *Injector) Saved() linux.Regs { return in.saved }

// Call runs syscall nr with up to six arguments in the tracee and returns
// its result. A negative result is a *CallError wrapping the errno (so
// errors.Is(err, syscall.EPERM) works); ErrGone if the tracee died.
func (in *Injector) Call(nr uint64, args ...uint64) (uint64, error) {
	if in.finished {
		return 0, fmt.Errorf("inject syscall %d: injector already finished", nr)
	}
	if len(args) > 6 {
		return 0, fmt.Errorf("inject syscall %d: %d arguments, at most 6", nr, len(args))
	}
	r := in.saved
	r.Rax, r.Rip = nr, in.insn
	// orig_rax -1: no restart processing of an interrupted call on the way
	// back to user mode, where the thread executes the syscall at insn.
	r.Orig_rax = ^uint64(0)
	for i, a := range args {
		setArg(&r, i, a)
	}
	if err := linux.PtraceSetRegs(in.tid, &r); err != nil {
		return 0, in.gone(err)
	}
	// syscall-entry stop, then syscall-exit stop
	if err := in.resumeToSyscallStop(); err != nil {
		return 0, err
	}
	if err := in.resumeToSyscallStop(); err != nil {
		return 0, err
	}
	return in.result(nr)
}

// result reads the result of call nr at its syscall-exit stop.
func (in *Injector) result(nr uint64) (uint64, error) {
	var r linux.Regs
	if err := linux.PtraceGetRegs(in.tid, &r); err != nil {
		return 0, in.gone(err)
	}
	if v := int64(r.Rax); v < 0 && v > -4096 {
		return 0, &CallError{Nr: nr, Errno: syscall.Errno(-v)}
	}
	return r.Rax, nil
}

// ResumeToSyscallStop resumes thread tid (held at a stop) to its next
// syscall stop, as an Injector does between its calls (blocking: as
// SetBlocking's): it passes over group and interrupt stops and returns the
// signals that stopped the thread on the way, held back for the caller to
// deliver.
func ResumeToSyscallStop(tid int, blocking bool) ([]int, error) {
	in := &Injector{tid: tid, blocking: blocking}
	err := in.resumeToSyscallStop()
	return in.sigs, err
}

// Start makes syscall nr in the tracee and returns once the thread is
// inside it, running: for a call that blocks until the caller does
// something (answers a seccomp notification the call raised, serves a
// fault). While it waits, call Poll now and then: a signal interrupting
// the call stops the thread, and once resumed it makes the call again
// (the kernel restarts it). Wait returns the call's result.
func (in *Injector) Start(nr uint64, args ...uint64) error {
	if in.finished {
		return fmt.Errorf("inject syscall %d: injector already finished", nr)
	}
	if len(args) > 6 {
		return fmt.Errorf("inject syscall %d: %d arguments, at most 6", nr, len(args))
	}
	r := in.saved
	r.Rax, r.Rip, r.Orig_rax = nr, in.insn, ^uint64(0)
	for i, a := range args {
		setArg(&r, i, a)
	}
	if err := linux.PtraceSetRegs(in.tid, &r); err != nil {
		return in.gone(err)
	}
	if err := in.resumeToSyscallStop(); err != nil { // syscall-entry stop
		return err
	}
	if err := linux.PtraceSyscall(in.tid, 0); err != nil {
		return in.gone(err)
	}
	in.started = nr
	return nil
}

// Poll takes a pending stop of the thread Start left in a call, if any,
// holds a signal-delivery stop's signal (Finish returns it), and resumes
// the thread to its next syscall stop without waiting for it.
func (in *Injector) Poll() error {
	tid, ws, err := linux.PtraceWaitTidNoHang(in.tid)
	if err != nil {
		return in.gone(err)
	}
	if tid == 0 {
		return nil
	}
	if ws.Exited() || ws.Signaled() {
		return &GoneError{Tid: in.tid, Status: ws, Reaped: true}
	}
	if !ws.Stopped() {
		return nil
	}
	if sig := ws.StopSignal(); sig != syscall.SIGTRAP && sig != syscall.SIGTRAP|0x80 && uint32(ws)>>16 == 0 {
		in.hold(int(sig))
	}
	if err := linux.PtraceSyscall(in.tid, 0); err != nil {
		return in.gone(err)
	}
	return nil
}

// Wait waits for the end of the call Start made (its syscall-exit stop)
// and returns its result, as Call does.
func (in *Injector) Wait() (uint64, error) {
	if in.started == 0 {
		return 0, fmt.Errorf("inject: Wait without Start")
	}
	nr := in.started
	in.started = 0
	if err := in.waitSyscallStop(); err != nil {
		return 0, err
	}
	return in.result(nr)
}

// Scratch returns the address of at least n bytes of read-write memory in
// the tracee, mapped on first use by an injected mmap and unmapped by
// Finish. Write it with linux.TraceeWrite.
func (in *Injector) Scratch(n uint64) (uint64, error) {
	n = (n + 4095) &^ 4095
	if in.scratch != 0 && in.scratchLen >= n {
		return in.scratch, nil
	}
	if in.scratch != 0 {
		if _, err := in.Call(sysMunmap, in.scratch, in.scratchLen); err != nil {
			return 0, fmt.Errorf("unmap scratch memory: %w", err)
		}
		in.scratch, in.scratchLen = 0, 0
	}
	a, err := in.Call(sysMmap, 0, n, ProtRead|ProtWrite, MapPrivate|MapAnon, ^uint64(0), 0)
	if err != nil {
		return 0, fmt.Errorf("map scratch memory: %w", err)
	}
	in.scratch, in.scratchLen = a, n
	return a, nil
}

// Finish unmaps the scratch memory and writes the saved registers back;
// the thread stays stopped. It returns the signals that arrived for the
// thread while it was held, which the caller delivers when it resumes or
// detaches it (Attached.Detach does).
func (in *Injector) Finish() ([]int, error) {
	if in.finished {
		return in.sigs, nil
	}
	var first error
	for _, m := range []struct {
		addr *uint64
		n    uint64
		what string
	}{{&in.scratch, in.scratchLen, "scratch memory"}, {&in.code, 4096, "injected code"}, {&in.table, in.tableLen, "call table"}} {
		if *m.addr == 0 {
			continue
		}
		if _, err := in.Call(sysMunmap, *m.addr, m.n); err != nil && first == nil {
			first = fmt.Errorf("unmap %s: %w", m.what, err)
		}
		*m.addr = 0
	}
	in.scratchLen, in.tableLen = 0, 0
	in.finished = true
	if err := linux.PtraceSetRegs(in.tid, &in.saved); err != nil {
		return in.sigs, in.gone(err)
	}
	return in.sigs, first
}

// resumeToSyscallStop resumes the thread to its next syscall stop,
// suppressing (and remembering) signals delivered on the way and passing
// over group and interrupt stops.
func (in *Injector) resumeToSyscallStop() error {
	if err := linux.PtraceSyscall(in.tid, 0); err != nil {
		return in.gone(err)
	}
	return in.waitSyscallStop()
}

// waitSyscallStop waits for the resumed thread's next syscall stop, with
// resumeToSyscallStop's handling of the stops on the way.
func (in *Injector) waitSyscallStop() error {
	for {
		ws, err := in.wait()
		if err != nil {
			return err
		}
		sig := ws.StopSignal()
		if sig == syscall.SIGTRAP|0x80 {
			return nil
		}
		if uint32(ws)>>16 == 0 && sig != syscall.SIGTRAP {
			in.hold(int(sig)) // signal-delivery stop
		}
		if err := linux.PtraceSyscall(in.tid, 0); err != nil {
			return in.gone(err)
		}
	}
}

// Hold keeps a signal that stopped the thread meanwhile for the caller to
// deliver (Finish returns it). A standard signal is kept once, as the
// kernel keeps it pending once; real-time signals queue.
func (in *Injector) Hold(sig int) { in.hold(sig) }

func (in *Injector) hold(sig int) {
	if sig < sigRTMin {
		for _, s := range in.sigs {
			if s == sig {
				return
			}
		}
	}
	in.sigs = append(in.sigs, sig)
}

// sigRTMin is the kernel's first real-time signal.
const sigRTMin = 32

func (in *Injector) gone(err error) error {
	if errors.Is(err, syscall.ESRCH) {
		return &GoneError{Tid: in.tid}
	}
	return fmt.Errorf("thread %d: %w", in.tid, err)
}

// SetBlocking makes the injector wait for the thread's stops in wait4
// itself, without a timeout, instead of polling: for a tracer whose one
// thread serves many tracees (a dilation supervisor), for which polling
// burns CPU and every call it injects returns at once.
func (in *Injector) SetBlocking() { in.blocking = true }

// wait waits for the thread's next stop, as SetBlocking says.
func (in *Injector) wait() (linux.WaitStatus, error) {
	if !in.blocking {
		return waitStop(in.tid)
	}
	ws, err := linux.PtraceWaitTid(in.tid)
	switch {
	case errors.Is(err, syscall.ECHILD):
		return ws, &GoneError{Tid: in.tid}
	case err != nil:
		return ws, fmt.Errorf("wait for thread %d: %w", in.tid, err)
	case ws.Exited() || ws.Signaled():
		return ws, &GoneError{Tid: in.tid, Status: ws, Reaped: true}
	}
	return ws, nil
}

// waitStop waits (at most StopTimeout) for thread tid's next stop; it
// returns ErrGone if the thread exited instead. A stop usually comes within
// tens of microseconds, so it polls without sleeping for a while first
// (a sleep costs more than that here), then backs off.
func waitStop(tid int) (linux.WaitStatus, error) {
	start := time.Now()
	pause := 20 * time.Microsecond
	for i := 0; ; i++ {
		got, ws, err := linux.PtraceWaitTidNoHang(tid)
		if err != nil {
			if errors.Is(err, syscall.ECHILD) {
				return ws, fmt.Errorf("thread %d: %w", tid, ErrGone)
			}
			return ws, fmt.Errorf("wait for thread %d: %w", tid, err)
		}
		if got == tid {
			if ws.Exited() || ws.Signaled() {
				return ws, &GoneError{Tid: tid, Status: ws, Reaped: true}
			}
			if ws.Stopped() {
				return ws, nil
			}
			continue
		}
		waited := time.Since(start)
		switch {
		case waited > StopTimeout:
			return ws, fmt.Errorf("wait for thread %d to stop: timed out after %v", tid, StopTimeout)
		case waited < spinFor:
			continue
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Millisecond)
	}
}

// spinFor is how long waitStop polls before it sleeps between polls.
const spinFor = 300 * time.Microsecond

func setArg(r *linux.Regs, i int, v uint64) {
	switch i {
	case 0:
		r.Rdi = v
	case 1:
		r.Rsi = v
	case 2:
		r.Rdx = v
	case 3:
		r.R10 = v
	case 4:
		r.R8 = v
	case 5:
		r.R9 = v
	}
}

// Kernel-internal errnos an interrupted system call leaves in rax
// (include/linux/errno.h), and restart_syscall(2)'s number.
const (
	errRestartSys          = 512
	errRestartNoIntr       = 513
	errRestartNoHand       = 514
	errRestartRestartBlock = 516
	sysRestartSyscall      = 219
)

// RestartRegs returns regs as the thread will need them to redo the
// system call it was stopped in, if any: when orig_rax names a call and rax
// holds one of the kernel's restart codes, rip goes back over the syscall
// instruction and rax back to the call number (restart_syscall for
// -ERESTART_RESTARTBLOCK). These are the registers to restore after
// injecting (the kernel only applies restarts to the registers it finds on
// the way out, and injected calls replace them). It reports whether a call
// will be restarted.
func RestartRegs(regs linux.Regs) (linux.Regs, bool) {
	if int64(regs.Orig_rax) < 0 {
		return regs, false
	}
	switch -int64(regs.Rax) {
	case errRestartSys, errRestartNoIntr, errRestartNoHand:
		regs.Rax = regs.Orig_rax
	case errRestartRestartBlock:
		regs.Rax = sysRestartSyscall
	default:
		return regs, false
	}
	regs.Rip -= 2
	regs.Orig_rax = ^uint64(0)
	return regs, true
}
