package ptrace

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
)

const userCS64 = 0x33 // the code segment of 64-bit user mode

// Attached is one thread of a running process, seized and stopped so that
// system calls can be injected into it (the embedded Injector). Detach lets
// it go on where it was.
type Attached struct {
	*Injector
	// Pid is the process, the Injector's Tid the thread stopped.
	Pid int
	// InSyscall says the thread was stopped inside a system call that it
	// will restart after Detach.
	InSyscall bool
	detached  bool
}

// Attach seizes one thread of process pid (the main thread if it can be
// stopped, else the first other that can), interrupts it and prepares to
// inject into it. The caller must have locked its goroutine to its OS
// thread (runtime.LockOSThread) and use the result only from there, and
// must call Detach. The process keeps running on its other threads.
func Attach(pid int) (*Attached, error) {
	tids, err := threads(pid)
	if err != nil {
		return nil, err
	}
	var first error
	for _, tid := range tids {
		a, err := attachThread(pid, tid)
		if err == nil {
			return a, nil
		}
		if errors.Is(err, ErrTraced) || errors.Is(err, ErrUnsupportedABI) || errors.Is(err, ErrNoSyscallInsn) {
			return nil, err
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = fmt.Errorf("attach to process %d: %w", pid, ErrGone)
	}
	return nil, first
}

func attachThread(pid, tid int) (*Attached, error) {
	opts := linux.PtraceOTraceSysGood | linux.PtraceOSuspendSeccomp
	err := linux.PtraceSeize(tid, opts)
	if errors.Is(err, syscall.EPERM) {
		// Not allowed to suspend seccomp (or already traced): try plain.
		opts = linux.PtraceOTraceSysGood
		err = linux.PtraceSeize(tid, opts)
	}
	switch {
	case errors.Is(err, syscall.EPERM):
		if tracerOf(tid) != 0 {
			return nil, fmt.Errorf("attach to thread %d of %d: %w", tid, pid, ErrTraced)
		}
		return nil, fmt.Errorf("attach to thread %d of %d: %w", tid, pid, err)
	case errors.Is(err, syscall.ESRCH):
		return nil, fmt.Errorf("attach to thread %d of %d: %w", tid, pid, ErrGone)
	case err != nil:
		return nil, fmt.Errorf("attach to thread %d of %d: %w", tid, pid, err)
	}
	a, err := stopSeized(pid, tid)
	if err != nil {
		_ = linux.PtraceDetach(tid, 0)
		return nil, err
	}
	return a, nil
}

// stopSeized interrupts a seized thread and readies an injector on it.
func stopSeized(pid, tid int) (*Attached, error) {
	if err := linux.PtraceInterrupt(tid); err != nil {
		return nil, fmt.Errorf("interrupt thread %d: %w", tid, err)
	}
	var sigs []int
	for {
		ws, err := waitStop(tid)
		if err != nil {
			return nil, err
		}
		if uint32(ws)>>16 == linux.PtraceEventStop {
			break // the interrupt (or a group stop): the thread is held
		}
		// a signal-delivery stop first: hold the signal back
		sigs = append(sigs, int(ws.StopSignal()))
		if err := linux.PtraceCont(tid, 0); err != nil {
			return nil, fmt.Errorf("resume thread %d to its interrupt: %w", tid, err)
		}
	}
	var regs linux.Regs
	if err := linux.PtraceGetRegs(tid, &regs); err != nil {
		return nil, fmt.Errorf("read registers of thread %d: %w", tid, err)
	}
	if regs.Cs != userCS64 {
		return nil, fmt.Errorf("attach to thread %d: %w", tid, ErrUnsupportedABI)
	}
	insn, err := FindSyscallInsn(pid)
	if err != nil {
		return nil, err
	}
	regs, restart := RestartRegs(regs)
	in := NewInjector(tid, regs, insn)
	in.sigs = sigs
	return &Attached{Injector: in, Pid: pid, InSyscall: restart}, nil
}

// Detach restores the thread's registers (Finish) and lets it go, then
// sends again the signals that arrived while it was held.
func (a *Attached) Detach() error {
	if a.detached {
		return nil
	}
	a.detached = true
	sigs, ferr := a.Finish()
	if err := linux.PtraceDetach(a.tid, 0); err != nil {
		// ESRCH is also what a request from another OS thread than the
		// tracer's gets: only a thread that is gone is no error
		if _, serr := os.Stat("/proc/" + strconv.Itoa(a.Pid) + "/task/" + strconv.Itoa(a.tid)); !errors.Is(err, syscall.ESRCH) || serr == nil {
			return fmt.Errorf("detach from thread %d: %w", a.tid, err)
		}
	}
	for _, s := range sigs {
		_ = linux.PtraceTgkill(a.Pid, a.tid, s)
	}
	return ferr
}

// threads lists the threads of pid, the main thread first.
func threads(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("attach to process %d: %w", pid, ErrGone)
	}
	if err != nil {
		return nil, fmt.Errorf("attach to process %d: %w", pid, err)
	}
	var tids []int
	for _, e := range ents {
		if t, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, t)
		}
	}
	sort.Slice(tids, func(i, j int) bool {
		if (tids[i] == pid) != (tids[j] == pid) {
			return tids[i] == pid
		}
		return tids[i] < tids[j]
	})
	return tids, nil
}

// tracerOf returns the TracerPid of thread tid (0: none or unknown).
func tracerOf(tid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "TracerPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
