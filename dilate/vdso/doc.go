// Package vdso is the replacement vDSO that dilates clock reads in user
// space, and the shared clock page it reads.
//
// In a nutshell: at every exec of a dilated process the supervisor
// (package dilate) maps one contiguous region into the tracee and points
// AT_SYSINFO_EHDR at its start:
//
//	base                        Image() pages, R+X: a vDSO-shaped ELF built
//	                            from csrc/vdso.c (soname linux-vdso.so.1,
//	                            LINUX_2.6 symbols, no relocations)
//	base + ProcPageOffset       ProcPage(realSyms), R: the addresses of the
//	                            REAL vDSO's functions in this tracee (the
//	                            real vDSO stays mapped)
//	base + ClockPageOffset      the run's Clock page, R, MAP_SHARED of the
//	                            memfd "vmux-clock[:name]"
//
// glibc and the Go runtime parse the image as the vDSO and call its
// __vdso_clock_gettime & co. Each calls the real function through the
// per-process page, then maps wall-clock results to virtual time with the
// parameters of the clock page (vclock.Params, layout in vclock/page.go),
// read under a seqlock. CPU-time and unknown clocks pass through: the
// supervisor scales their syscalls. A rate change is one seqlock write to
// the shared page, seen at once by every process of the run.
//
// Seqlock (one writer at a time, across processes): a writer takes the
// lock by CAS of seq from even to odd, reads the real clocks (so the new
// bases are taken after every reader that saw the old ones finished),
// stores the fields, and releases with seq+1. All stores are Go atomics
// (sequentially consistent: XCHG/LOCK on amd64), so the field stores are
// ordered between the two seq stores. A reader loads seq (acquire),
// retries while odd, reads the real clock and the fields, fences (acquire)
// and retries if seq changed: an accepted reading saw one whole version.
//
// Contract with the supervisor: map the three parts as one region (image
// R+X from Image(), ProcPage(ParseVDSO(real vDSO bytes).Add(real base)) R,
// the clock memfd R MAP_SHARED) and point AT_SYSINFO_EHDR at its start.
// The replacement makes raw clock syscalls itself only when the per-process
// page has no real function and for the ALARM clocks; the supervisor
// dilates those like any raw clock syscall. A wall-clock syscall whose
// instruction pointer lies inside the REAL vDSO is the real vDSO's own
// fallback, whose result the replacement dilates: the supervisor must pass
// it through (it does not happen with a vDSO-capable clock source such as
// tsc). CPU-time clocks always pass through the replacement unscaled.
// Fork keeps the region (the clock page stays shared); exec needs a new one.
//
// The image is rebuilt with build.sh (go generate); a test rebuilds it and
// checks it is byte-identical to the committed vdso.so.
package vdso

//go:generate ./build.sh
