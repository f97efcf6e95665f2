// Package vclock is the pure clock math of time dilation: no syscalls, no
// unsafe, no global state.
//
// In a nutshell: a process tree at time-dilation factor k (a positive
// rational, TDF) perceives time k times slower than real time. Each clock id
// (REALTIME, MONOTONIC, BOOTTIME, ...) gets a linear map from real to virtual
// nanoseconds anchored at a Base {Real, Virt}:
//
//	virtual = Virt + ((real - Real) * mult) >> 32,   mult = round(2^32 / k)
//
// computed in 128-bit arithmetic. A change of rate (SetTDF), a Pause (mult 0)
// or a Resume re-bases every clock at the instant of the change: the new
// Base is (now, virtual(now)) under the old map, so virtual time is
// continuous and never goes backwards. CPU-time clocks are not anchored:
// they read real CPU time / s, s = share x k (DESIGN.md).
//
// Error bound: mult is 2^32/k rounded to the nearest integer, so its relative
// error is at most 0.5/mult = k/2^33 (1.2e-9 at k = 10); with the final floor
// a virtual reading is off by at most 1 ns + |real - Real| * k/2^33 ns
// (0.12 ns per real second at k = 1, so ~1 ns per virtual second). Each
// re-base restarts that drift from zero.
//
// Conversions for the supervisor, which rewrites sleeps and timeouts:
// VirtToReal turns a relative virtual duration into real (x k, rounded up so
// a positive timeout never becomes zero), RealToVirt scales a remaining time
// back, and RealDeadline maps an absolute virtual deadline of one clock to
// the earliest real time at which that clock reads at least the deadline.
//
// The shared clock page (Page*) is the byte layout of Params that every
// process of a run maps: EncodePage and DecodePage are pure; the seqlock
// that guards it lives with the memfd in dilate/vdso.
package vclock
