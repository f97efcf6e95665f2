package dilate

import (
	"syscall"

	"github.com/vmux/vmux/internal/linux"
)

// tracedSyscalls lists what the seccomp filter sends to the supervisor.
// Arguments are tested in the filter where that keeps the hot paths out of
// the trap: futex only for wait operations with a timeout (the Go runtime
// and the JVM wake each other with futex constantly), poll/epoll only with
// a positive timeout (zero is a non-blocking poll, -1 waits forever),
// pointer timeouts only when non-NULL, socket options only for the two
// timeouts.
func tracedSyscalls() []linux.SeccompRule {
	trace := func(nr uint32, conds ...linux.SeccompCond) linux.SeccompRule {
		return linux.SeccompRule{Nr: nr, Conds: conds, Action: linux.SeccompTrace}
	}
	nonNull := func(arg int) linux.SeccompCond {
		return linux.SeccompCond{Arg: arg, Kind: linux.CondNonZero}
	}
	positive := func(arg int) linux.SeccompCond {
		return linux.SeccompCond{Arg: arg, Kind: linux.CondPositive32}
	}
	sockTimeo := []linux.SeccompCond{
		{Arg: 1, Kind: linux.CondMaskedIn, Mask: ^uint32(0), Values: []uint32{solSocket}},
		{Arg: 2, Kind: linux.CondMaskedIn, Mask: ^uint32(0), Values: []uint32{soRcvtimeoOld, soSndtimeoOld, soRcvtimeoNew, soSndtimeoNew}},
	}
	return []linux.SeccompRule{
		// Clock reads that bypass the vDSO, and CPU-time reads.
		trace(sysClockGettime), trace(sysGettimeofday), trace(sysTime), trace(sysClockGetres),
		trace(sysGetrusage), trace(sysTimes), trace(sysSysinfo),
		// Sleeps.
		trace(sysNanosleep), trace(sysClockNanosleep), trace(sysRestartSyscall),
		// Timeouts.
		trace(sysFutex,
			linux.SeccompCond{Arg: 1, Kind: linux.CondMaskedIn, Mask: futexCmdMask,
				Values: []uint32{futexWait, futexWaitBitset, futexLockPI, futexLockPI2, futexWaitRequeuePI}},
			nonNull(3)),
		trace(sysFutexWaitv, nonNull(3)),
		trace(sysPoll, positive(2)), trace(sysPpoll, nonNull(2)),
		trace(sysSelect, nonNull(4)), trace(sysPselect6, nonNull(4)),
		trace(sysEpollWait, positive(3)), trace(sysEpollPwait, positive(3)), trace(sysEpollPwait2, nonNull(3)),
		trace(sysRtSigtimedwait, nonNull(2)),
		trace(sysSemtimedop, nonNull(3)), trace(sysRecvmmsg, nonNull(4)),
		trace(sysMqTimedsend, nonNull(4)), trace(sysMqTimedreceive, nonNull(4)),
		trace(sysIoGetevents, nonNull(4)), trace(sysIoPgetevents, nonNull(4)),
		trace(sysSetsockopt, sockTimeo...), trace(sysGetsockopt, sockTimeo...),
		// Timers.
		trace(sysTimerfdSettime), trace(sysTimerfdGettime),
		trace(sysTimerSettime), trace(sysTimerGettime),
		trace(sysSetitimer), trace(sysGetitimer), trace(sysAlarm),
		// A tracee cannot be traced by its own program: refuse with an error.
		trace(sysPtrace),
	}
}

// buildFilter assembles the launcher's filter. Syscalls of other ABIs
// (i386 int 0x80, x32) fail with ENOSYS rather than run undilated.
func buildFilter() (linux.SeccompProgram, error) {
	return linux.AssembleSeccomp(tracedSyscalls(), linux.SeccompAllow, linux.SeccompErrno(syscall.ENOSYS))
}
