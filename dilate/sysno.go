package dilate

// x86-64 syscall numbers the supervisor traps or injects.
const (
	sysPoll           = 7
	sysMmap           = 9
	sysMprotect       = 10
	sysSelect         = 23
	sysNanosleep      = 35
	sysGetitimer      = 36
	sysAlarm          = 37
	sysSetitimer      = 38
	sysSetsockopt     = 54
	sysGetsockopt     = 55
	sysClose          = 3
	sysIoctl          = 16
	sysRecvmsg        = 47
	sysSeccomp        = 317
	sysGettimeofday   = 96
	sysGetrusage      = 98
	sysSysinfo        = 99
	sysTimes          = 100
	sysPtrace         = 101
	sysRtSigtimedwait = 128
	sysTime           = 201
	sysFutex          = 202
	sysIoGetevents    = 208
	sysRestartSyscall = 219
	sysSemtimedop     = 220
	sysTimerSettime   = 223
	sysTimerGettime   = 224
	sysClockGettime   = 228
	sysClockNanosleep = 230
	sysEpollWait      = 232
	sysMqTimedsend    = 242
	sysMqTimedreceive = 243
	sysOpenat         = 257
	sysPselect6       = 270
	sysPpoll          = 271
	sysEpollPwait     = 281
	sysTimerfdSettime = 286
	sysTimerfdGettime = 287
	sysRecvmmsg       = 299
	sysIoPgetevents   = 333
	sysFutexWaitv     = 449
	sysEpollPwait2    = 441
)

// futex operations (linux/futex.h).
const (
	futexWait          = 0
	futexLockPI        = 6
	futexWaitBitset    = 9
	futexWaitRequeuePI = 11
	futexLockPI2       = 13
	futexPrivateFlag   = 128
	futexClockRealtime = 256
	futexCmdMask       = ^uint32(futexPrivateFlag | futexClockRealtime)
)

// Other ABI constants.
const (
	timerAbstime     = 1 // TIMER_ABSTIME, TFD_TIMER_ABSTIME
	solSocket        = 1
	soRcvtimeoOld    = 20
	soSndtimeoOld    = 21
	soRcvtimeoNew    = 66
	soSndtimeoNew    = 67
	itimerReal       = 0
	itimerVirtual    = 1
	itimerProf       = 2
	atNull           = 0
	atIgnore         = 1
	atSysinfoEhdr    = 33
	errnoEINTR       = 4
	errRestartSys    = 512 // ERESTARTSYS
	errRestartNoInt  = 513 // ERESTARTNOINTR
	errRestartNoHand = 514 // ERESTARTNOHAND
	errRestartBlock  = 516 // ERESTART_RESTARTBLOCK
	userHZ           = 100 // clock_t ticks per second (USER_HZ)
)
