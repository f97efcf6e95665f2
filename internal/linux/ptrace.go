package linux

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Regs is the x86-64 register set read and written at ptrace stops.
type Regs = unix.PtraceRegs

// Ptrace options used by the time-dilation supervisor.
const (
	PtraceOTraceSysGood = unix.PTRACE_O_TRACESYSGOOD
	PtraceOTraceFork    = unix.PTRACE_O_TRACEFORK
	PtraceOTraceVfork   = unix.PTRACE_O_TRACEVFORK
	PtraceOTraceClone   = unix.PTRACE_O_TRACECLONE
	PtraceOTraceExec    = unix.PTRACE_O_TRACEEXEC
	PtraceOTraceSeccomp = unix.PTRACE_O_TRACESECCOMP
	PtraceOExitKill     = unix.PTRACE_O_EXITKILL
	// PtraceOSuspendSeccomp lets injected syscalls bypass the tracee's own
	// seccomp filter (needs CAP_SYS_ADMIN; the tracer must have none).
	PtraceOSuspendSeccomp = 1 << 21
)

// Ptrace event numbers (status>>16 at a PTRACE_EVENT stop).
const (
	PtraceEventFork    = unix.PTRACE_EVENT_FORK
	PtraceEventVfork   = unix.PTRACE_EVENT_VFORK
	PtraceEventClone   = unix.PTRACE_EVENT_CLONE
	PtraceEventExec    = unix.PTRACE_EVENT_EXEC
	PtraceEventExit    = unix.PTRACE_EVENT_EXIT
	PtraceEventSeccomp = unix.PTRACE_EVENT_SECCOMP
	PtraceEventStop    = unix.PTRACE_EVENT_STOP
)

func ptrace(req, pid int, addr, data uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(pid), addr, data, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// PtraceSeize attaches to pid without stopping it, with options set at once.
// All ptrace requests for a tracee must come from the same OS thread.
func PtraceSeize(pid int, options int) error {
	return syscallErr("ptrace(SEIZE)", ptrace(unix.PTRACE_SEIZE, pid, 0, uintptr(options)))
}

// PtraceSetOptions changes the options of a stopped tracee.
func PtraceSetOptions(tid int, options int) error {
	return syscallErr("ptrace(SETOPTIONS)", ptrace(unix.PTRACE_SETOPTIONS, tid, 0, uintptr(options)))
}

// PtraceCont resumes a stopped tracee, delivering sig (0 for none).
func PtraceCont(tid, sig int) error {
	return syscallErr("ptrace(CONT)", ptrace(unix.PTRACE_CONT, tid, 0, uintptr(sig)))
}

// PtraceSyscall resumes a stopped tracee until the next syscall entry or exit.
func PtraceSyscall(tid, sig int) error {
	return syscallErr("ptrace(SYSCALL)", ptrace(unix.PTRACE_SYSCALL, tid, 0, uintptr(sig)))
}

// PtraceListen lets a tracee in group-stop stay stopped while still
// reporting the next event (SIGCONT, SIGKILL) to the tracer.
func PtraceListen(tid int) error {
	return syscallErr("ptrace(LISTEN)", ptrace(unix.PTRACE_LISTEN, tid, 0, 0))
}

// PtraceInterrupt stops a seized tracee (reported as PTRACE_EVENT_STOP).
func PtraceInterrupt(tid int) error {
	return syscallErr("ptrace(INTERRUPT)", ptrace(unix.PTRACE_INTERRUPT, tid, 0, 0))
}

// PtraceDetach detaches from a stopped tracee, delivering sig.
func PtraceDetach(tid, sig int) error {
	return syscallErr("ptrace(DETACH)", ptrace(unix.PTRACE_DETACH, tid, 0, uintptr(sig)))
}

// PtraceGetRegs reads the registers of a stopped tracee.
func PtraceGetRegs(tid int, r *Regs) error {
	return syscallErr("ptrace(GETREGS)", ptrace(unix.PTRACE_GETREGS, tid, 0, uintptr(unsafe.Pointer(r))))
}

// PtraceSetRegs writes the registers of a stopped tracee.
func PtraceSetRegs(tid int, r *Regs) error {
	return syscallErr("ptrace(SETREGS)", ptrace(unix.PTRACE_SETREGS, tid, 0, uintptr(unsafe.Pointer(r))))
}

// PtraceEventMsg returns the message of the last PTRACE_EVENT stop (the new
// tid for clone/fork, the former tid for exec, SECCOMP_RET_DATA for seccomp).
func PtraceEventMsg(tid int) (uint64, error) {
	var msg uint64
	err := ptrace(unix.PTRACE_GETEVENTMSG, tid, 0, uintptr(unsafe.Pointer(&msg)))
	return msg, syscallErr("ptrace(GETEVENTMSG)", err)
}

// PtraceWaitAny waits for any child or tracee of the calling thread
// (__WALL|__WNOTHREAD: children other threads of this process forked are
// left to whoever waits for them) and returns its tid and status.
func PtraceWaitAny() (int, WaitStatus, error) {
	return ptraceWait(-1, unix.WNOTHREAD)
}

// PtraceWaitTid waits for one tracee thread.
func PtraceWaitTid(tid int) (WaitStatus, error) {
	_, ws, err := ptraceWait(tid, 0)
	return ws, err
}

// PtraceWaitTidNoHang polls one tracee thread for a pending event without
// blocking; a zero tid means none.
func PtraceWaitTidNoHang(tid int) (int, WaitStatus, error) {
	return ptraceWait(tid, unix.WNOHANG)
}

// PtraceWaitAnyNoHang polls for a pending event of the calling thread's
// children or tracees without blocking; a zero tid means none.
func PtraceWaitAnyNoHang() (int, WaitStatus, error) {
	return ptraceWait(-1, unix.WNOHANG|unix.WNOTHREAD)
}

func ptraceWait(pid, opts int) (int, WaitStatus, error) {
	var ws unix.WaitStatus
	var got int
	err := retryEINTR(func() error {
		var err error
		got, err = unix.Wait4(pid, &ws, unix.WALL|opts, nil)
		return err
	})
	return got, ws, syscallErr("wait4", err)
}

// TraceeRead copies len(buf) bytes at addr in process pid into buf.
func TraceeRead(pid int, addr uint64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	if err != nil {
		return syscallErr("process_vm_readv", err)
	}
	if n != len(buf) {
		return syscallErr("process_vm_readv", unix.EFAULT)
	}
	return nil
}

// TraceeWrite copies buf to addr in process pid. The target pages must be
// writable in the tracee (it does not force through read-only mappings).
func TraceeWrite(pid int, addr uint64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMWritev(pid, local, remote, 0)
	if err != nil {
		return syscallErr("process_vm_writev", err)
	}
	if n != len(buf) {
		return syscallErr("process_vm_writev", unix.EFAULT)
	}
	return nil
}

// PtraceTgkill sends sig to one thread.
func PtraceTgkill(tgid, tid, sig int) error {
	return syscallErr("tgkill", unix.Tgkill(tgid, tid, unix.Signal(sig)))
}
