package dilate

import (
	"strconv"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// sysEntry is one trapped syscall: the seccomp filter sends it to the
// supervisor exactly when every condition passes, and the supervisor
// rewrites it with entry. This table is the one list of what dilation
// traps: the filter, the dispatch and the names are all derived from it
// (TestTableAgrees checks that they stay so).
type sysEntry struct {
	nr    uint32
	name  string
	conds []linux.SeccompCond
	// entry rewrites the call at its seccomp stop. special marks the
	// calls seccompStop handles itself before any table lookup
	// (restart_syscall: the restart of a rewritten wait; ptrace: refused).
	entry   entryFunc
	special bool
	// stamps: also trapped, unconditionally, by the timestamp filter a
	// process gets when it turns packet timestamps on (handlers_sock.go);
	// stampsOnly: trapped by that filter alone, not the launcher's.
	stamps, stampsOnly bool
}

// Conditions tested in the filter, so that the hot paths stay out of the
// trap: futex only for wait operations with a timeout (the Go runtime and
// the JVM wake each other with futex constantly), poll/epoll only with a
// positive timeout (zero is a non-blocking poll, -1 waits forever), pointer
// timeouts only when non-NULL, socket options only for the two timeouts.
func nonNull(arg int) linux.SeccompCond {
	return linux.SeccompCond{Arg: arg, Kind: linux.CondNonZero}
}

func positive(arg int) linux.SeccompCond {
	return linux.SeccompCond{Arg: arg, Kind: linux.CondPositive32}
}

var (
	sockTimeo = []linux.SeccompCond{
		{Arg: 1, Kind: linux.CondMaskedIn, Mask: ^uint32(0), Values: []uint32{solSocket}},
		{Arg: 2, Kind: linux.CondMaskedIn, Mask: ^uint32(0), Values: []uint32{soRcvtimeoOld, soSndtimeoOld, soRcvtimeoNew, soSndtimeoNew}},
	}
	futexWaits = linux.SeccompCond{Arg: 1, Kind: linux.CondMaskedIn, Mask: futexCmdMask,
		Values: []uint32{futexWait, futexWaitBitset, futexLockPI, futexLockPI2, futexWaitRequeuePI}}
)

func conds(c ...linux.SeccompCond) []linux.SeccompCond { return c }

// table lists every trapped syscall. (clock_getres is not trapped: a
// resolution needs no scaling.)
var table = []sysEntry{
	// Sleeps.
	{nr: sysNanosleep, name: "nanosleep", entry: sleepEntry(-1, 0, -1, 1)},
	{nr: sysClockNanosleep, name: "clock_nanosleep", entry: sleepEntry(0, 2, 1, 3)},
	{nr: sysRestartSyscall, name: "restart_syscall", special: true},
	// Relative timeouts given as a const timespec.
	{nr: sysEpollPwait2, name: "epoll_pwait2", conds: conds(nonNull(3)), entry: constRelTs(3)},
	{nr: sysRtSigtimedwait, name: "rt_sigtimedwait", conds: conds(nonNull(2)), entry: constRelTs(2)},
	{nr: sysSemtimedop, name: "semtimedop", conds: conds(nonNull(3)), entry: constRelTs(3)},
	{nr: sysIoGetevents, name: "io_getevents", conds: conds(nonNull(4)), entry: constRelTs(4)},
	{nr: sysIoPgetevents, name: "io_pgetevents", conds: conds(nonNull(4)), entry: constRelTs(4)},
	// Relative timeouts the kernel updates with the time left.
	{nr: sysPpoll, name: "ppoll", conds: conds(nonNull(2)), entry: inoutRel(2, false)},
	{nr: sysPselect6, name: "pselect6", conds: conds(nonNull(4)), entry: inoutRel(4, false)},
	{nr: sysRecvmmsg, name: "recvmmsg", conds: conds(nonNull(4)), entry: recvmmsgEntry, stamps: true},
	{nr: sysSelect, name: "select", conds: conds(nonNull(4)), entry: inoutRel(4, true)},
	// Millisecond timeouts in a register.
	{nr: sysPoll, name: "poll", conds: conds(positive(2)), entry: msTimeout(2)},
	{nr: sysEpollWait, name: "epoll_wait", conds: conds(positive(3)), entry: msTimeout(3)},
	{nr: sysEpollPwait, name: "epoll_pwait", conds: conds(positive(3)), entry: msTimeout(3)},
	// Absolute deadlines.
	{nr: sysMqTimedsend, name: "mq_timedsend", conds: conds(nonNull(4)), entry: constAbsTs(4, vclock.Realtime)},
	{nr: sysMqTimedreceive, name: "mq_timedreceive", conds: conds(nonNull(4)), entry: constAbsTs(4, vclock.Realtime)},
	{nr: sysFutex, name: "futex", conds: conds(futexWaits, nonNull(3)), entry: futexEntry},
	{nr: sysFutexWaitv, name: "futex_waitv", conds: conds(nonNull(3)), entry: futexWaitvEntry},
	// Socket timeouts, and packet timestamps (handlers_sock.go).
	{nr: sysSetsockopt, name: "setsockopt", conds: sockOpts, entry: sockoptEntry},
	{nr: sysGetsockopt, name: "getsockopt", conds: sockTimeo, entry: getsockoptEntry},
	{nr: sysRecvmsg, name: "recvmsg", entry: recvmsgEntry, stamps: true, stampsOnly: true},
	{nr: sysIoctl, name: "ioctl", conds: conds(linux.SeccompCond{Arg: 1, Kind: linux.CondMaskedIn, Mask: ^uint32(0), Values: stampIoctls}),
		entry: stampIoctlEntry},
	// Clock reads that bypassed the vDSO, and CPU-time reads.
	{nr: sysClockGettime, name: "clock_gettime", entry: clockGettimeEntry},
	{nr: sysGettimeofday, name: "gettimeofday", entry: gettimeofdayEntry},
	{nr: sysTime, name: "time", entry: timeEntry},
	{nr: sysGetrusage, name: "getrusage", entry: getrusageEntry},
	{nr: sysTimes, name: "times", entry: timesEntry},
	{nr: sysSysinfo, name: "sysinfo", entry: sysinfoEntry},
	// Timers.
	{nr: sysTimerfdSettime, name: "timerfd_settime", entry: timerSettimeEntry(true)},
	{nr: sysTimerSettime, name: "timer_settime", entry: timerSettimeEntry(false)},
	{nr: sysTimerfdGettime, name: "timerfd_gettime", entry: timerGettimeEntry(true)},
	{nr: sysTimerGettime, name: "timer_gettime", entry: timerGettimeEntry(false)},
	{nr: sysSetitimer, name: "setitimer", entry: setitimerEntry},
	{nr: sysGetitimer, name: "getitimer", entry: getitimerEntry},
	{nr: sysAlarm, name: "alarm", entry: alarmEntry},
	// A tracee cannot be traced by its own program: refused with an error.
	{nr: sysPtrace, name: "ptrace", special: true},
}

// maxSysno bounds the x86-64 syscall numbers the dispatch array covers.
const maxSysno = 512

// entries and sysNames are the table indexed by syscall number.
var (
	entries  [maxSysno]entryFunc
	sysNames = map[uint64]string{}
)

func init() {
	for _, e := range table {
		if e.nr >= maxSysno || sysNames[uint64(e.nr)] != "" || (e.entry == nil) != e.special {
			panic("dilate: bad syscall table entry " + e.name)
		}
		entries[e.nr] = e.entry
		sysNames[uint64(e.nr)] = e.name
	}
}

func syscallName(nr uint64) string {
	if n, ok := sysNames[nr]; ok {
		return n
	}
	return "#" + strconv.FormatUint(nr, 10)
}

// tracedSyscalls is the filter's rule list: one rule per table entry (but
// those only the timestamp filter traps).
func tracedSyscalls() []linux.SeccompRule {
	var rules []linux.SeccompRule
	for _, e := range table {
		if !e.stampsOnly {
			rules = append(rules, linux.SeccompRule{Nr: e.nr, Conds: e.conds, Action: linux.SeccompTrace})
		}
	}
	return rules
}

// clockFdRule sends the supervisor's own injected close(clockFdMagic,
// clockFdMagic2) to the filter's listener (handshake.go): not a trapped
// syscall of the program, so not in the table.
var clockFdRule = linux.SeccompRule{Nr: sysClose, Action: linux.SeccompUserNotif, Conds: conds(
	linux.SeccompCond{Arg: 0, Kind: linux.CondMaskedIn, Mask: ^uint32(0), Values: []uint32{clockFdMagic}},
	linux.SeccompCond{Arg: 1, Kind: linux.CondMaskedIn, Mask: ^uint32(0), Values: []uint32{clockFdMagic2}},
)}

// buildFilter assembles the launcher's filter. Syscalls of other ABIs
// (i386 int 0x80, x32) fail with ENOSYS rather than run undilated.
func buildFilter() (linux.SeccompProgram, error) {
	return linux.AssembleSeccomp(append(tracedSyscalls(), clockFdRule), linux.SeccompAllow, linux.SeccompErrno(syscall.ENOSYS))
}
