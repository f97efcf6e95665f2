// Package dilate runs unmodified programs under time dilation: a process
// tree at factor k perceives time k times slower than real time.
//
// In a nutshell:
//
//   - Launch. Start re-executes the current binary as a small launcher
//     (any binary importing dilate becomes one when VMUX_DILATE_LAUNCHER=1,
//     from this package's init, on the main thread). The launcher blocks on
//     a pipe until the supervisor has PTRACE_SEIZEd it, then sets
//     no_new_privs, installs a seccomp filter on its thread and execs the
//     command: the program runs filtered and traced from its first
//     instruction, and every descendant inherits both.
//   - Filter. The filter returns SECCOMP_RET_TRACE for exactly the
//     syscalls that take or return times (table.go, the one list the filter,
//     the dispatch and the names derive from; futex only for wait
//     operations with a timeout, poll/epoll only with a positive timeout,
//     socket options only for SO_RCVTIMEO/SO_SNDTIMEO) and ALLOW for the
//     rest, so the program runs at full speed between those calls.
//   - Trace loop. One locked OS thread holds every ptrace request and runs
//     wait4(-1, __WALL). New threads, forks, vforks and execs are followed
//     (TRACECLONE/FORK/VFORK/EXEC); EXITKILL kills the tree if the
//     supervisor dies; any supervisor error kills the whole tree, so
//     nothing runs half-dilated.
//   - Clock changes. A rate change or a pause is one write to the shared
//     clock page: clock reads follow at once. Waits record their virtual
//     deadline; a watcher polling the page interrupts blocked ones and the
//     supervisor re-issues them with the time left under the new
//     parameters (while paused, a wait cannot end). Armed timers are
//     re-armed by running gettime/settime inside a kicked thread of their
//     process.
//   - Exec hook. At each exec stop the supervisor runs mmap/mprotect/
//     openat/close inside the tracee at a syscall instruction borrowed from
//     its real vDSO, maps the replacement vDSO (dilate/vdso), a page of the
//     real vDSO's addresses, the run's shared clock page (MAP_SHARED of the
//     clock memfd through /proc/<supervisor>/fd/N) and a private scratch
//     region, then points AT_SYSINFO_EHDR in the new auxv at the
//     replacement. Clock reads then never leave user space. (ReadsTrap
//     instead hides the vDSO with AT_IGNORE: every read becomes a trapped
//     syscall.)
//   - Rewriting. At a seccomp stop the supervisor converts time arguments
//     into a scratch slot (never the caller's memory): relative virtual
//     durations x k rounded up (a positive timeout never becomes zero),
//     absolute virtual deadlines to real deadlines of the same clock; then
//     asks for the syscall-exit stop when there is a result to scale:
//     there it scales results (clock reads, remaining times, timer values,
//     CPU times / s with s = share x k) and restores the argument
//     registers, so a restarted syscall is seen and rewritten again with
//     its original arguments. Calls with nothing to
//     scale at exit (futex waits, sleeps without a remaining-time output,
//     poll/epoll timeouts, const timeouts) skip the exit stop, halving
//     their cost: their converted argument lives in the thread's own
//     scratch slot and the argument register is left pointing there (or
//     holding the scaled int timeout) after the call; a restart that
//     re-executes the call is recognised by that pointer and passed
//     through. The one visible difference: that register is not preserved
//     across the syscall (glibc, the Go runtime, CPython and HotSpot in the
//     conformance suite do not rely on it; inline assembly that reuses it
//     would see the converted value). nanosleep and relative
//     clock_nanosleep interrupted into restart_syscall keep their remaining
//     time scaled (the kernel's restart block already holds the real
//     deadline).
//   - Sleep accuracy (sleeps.go). Relative waits count from when the
//     supervisor woke for the stop, less a probed lower bound of the
//     stop's latency; glibc's relative clock_nanosleep becomes an absolute
//     sleep on MONOTONIC (its time left, if asked for, is written at the
//     interrupting signal's delivery stop, so it needs no exit stop, and
//     its clock id and flags registers stay rewritten); the launcher sets
//     a 5 us timer slack before exec.
//
// Known limits: rdtsc/rdtscp cannot be trapped on this kernel (PR_SET_TSC
// has no effect), so programs that read the TSC directly see real time;
// io_uring timeouts (IORING_OP_TIMEOUT, LINK_TIMEOUT, io_uring_enter's
// EXT_ARG timeout) are not rewritten; rusage returned by wait4/waitid and
// /proc files (uptime, stat) are real; /proc/self/auxv still names the real
// vDSO; after a rate change or a pause, waits already blocked and armed
// timers (timerfd, POSIX timers, itimers, alarm) are re-armed within the
// watcher's 5 ms poll (rearm.go, timers.go), except recvmmsg, which
// keeps the real deadline computed at entry; CPU-time readings are
// re-based at their first read after a change of k (cpuclock.go), so the
// CPU time used in between counts at the old rate; 32-bit and x32
// programs are refused; programs that call ptrace are stopped with
// ErrUsesPtrace; a task cloned with CLONE_UNTRACED escapes the tracer and
// its time syscalls fail with ENOSYS (SECCOMP_RET_TRACE without a tracer);
// sched_rr_get_interval and clock_adjtime are not scaled; a FUTEX_LOCK_PI
// with a timeout restarted after a signal handler that itself made a
// rewritten call would reread a reused scratch slot. While a run lasts,
// the supervisor reaps every child of its process (wait4(-1)).
package dilate
