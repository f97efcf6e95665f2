// Package conformance is the time-dilation conformance suite: small
// programs in several runtimes (static Go, dynamic glibc C, python3, Java),
// built by the tests into a temporary directory and run under the dilate
// supervisor at TDF 10 and 0.5.
//
// In a nutshell: each program runs a list of steps (clock progression
// through the vDSO and raw syscalls, sleeps, poll/epoll/select/futex
// timeouts, timers, absolute deadlines). Around each step it prints
// "B name" and "E name virtual_ns want_ns", measuring with its own
// (dilated) monotonic clock; "F msg" reports a failed internal check, and
// "L name msg" a failed check that CPU contention can cause (counted like
// a step out of its bounds: the run is repeated). The
// test timestamps the B and E lines as they arrive, in real time, and
// checks both sides: the program saw want_ns of virtual time, and
// want_ns x k of real time passed, within max(10%, 5 ms real).
package conformance
