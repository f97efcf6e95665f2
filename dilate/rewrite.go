package dilate

import (
	"errors"
	"math"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// entryFunc rewrites a syscall at its seccomp stop. It returns true when it
// changed regs (or needs the results), so the exit stop must be caught. A
// caller's bad pointer or bad value is left for the kernel to reject.
type entryFunc func(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error)

func arg(r *linux.Regs, i int) uint64 {
	switch i {
	case 0:
		return r.Rdi
	case 1:
		return r.Rsi
	case 2:
		return r.Rdx
	case 3:
		return r.R10
	case 4:
		return r.R8
	}
	return r.R9
}

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
	default:
		r.R9 = v
	}
}

// errno returns e if rax holds -e.
func retErrno(r *linux.Regs) int64 {
	v := int64(r.Rax)
	if v < 0 && v > -4096 {
		return -v
	}
	return 0
}

func (t *tracer) seccompStop(th *thread) error {
	var regs linux.Regs
	if err := linux.PtraceGetRegs(th.tid, &regs); err != nil {
		return ignoreGone(err)
	}
	nr := regs.Orig_rax
	launcher := th.tree != nil && th.tid == th.tree.root && (th.as == nil || th.as.scratch == 0)
	if launcher && !th.tree.handshook && nr == sysPtrace && regs.Rdi == handshakeMagic {
		return t.handshake(th, &regs)
	}
	if nr == sysPtrace {
		return &TraceeError{Tid: th.tid, Op: "tracing", Err: ErrUsesPtrace}
	}
	if th.as == nil || th.as.scratch == 0 {
		// The launcher before its exec: nothing runs dilated yet; it
		// may be timing its stops (sleeps.go).
		if nr == sysClockNanosleep && launcher {
			t.probeStop(&regs)
		}
		return t.cont(th, 0)
	}
	t.stops[nr]++
	if th.passNext {
		th.passNext = false
		return t.cont(th, 0)
	}
	prevWait, prevRem := th.inflight, th.rem
	th.inflight, th.rem = nil, 0
	restart := th.restart
	th.restart = nil
	var entry entryFunc
	if nr == sysRestartSyscall {
		// A restarted wait is the same wait.
		th.inflight = prevWait
		if restart == nil {
			return t.cont(th, 0)
		}
		entry = func(_ *tracer, _ *thread, c *call, _ *linux.Regs) (bool, error) {
			c.exit = func(_ *tracer, th *thread, _ *call, regs *linux.Regs) error {
				if e := retErrno(regs); e == errnoEINTR || e == errRestartBlock {
					if e == errRestartBlock {
						th.restart = restart
					}
					return restart(mem{th.tid})
				}
				return nil
			}
			return true, nil
		}
	} else if nr < uint64(len(entries)) {
		entry = entries[nr]
	}
	if entry == nil {
		if prevWait != nil && th.inflight == nil {
			t.s.setWaiting(th, false)
		}
		return t.cont(th, 0)
	}
	if t.debug {
		t.s.log.Debug("seccomp stop", "tid", th.tid, "syscall", syscallName(nr),
			"args", []uint64{regs.Rdi, regs.Rsi, regs.Rdx, regs.R10, regs.R8, regs.R9})
	}
	p, err := t.params(th)
	if err != nil {
		return err
	}
	c := &call{saved: regs, p: p}
	need, err := entry(t, th, c, &regs)
	switch {
	case c.wait != nil && err == nil && need:
		th.inflight = c.wait
	case c.ours:
		th.inflight, th.rem = prevWait, prevRem // the same wait, re-executed
	}
	if (th.inflight != nil) != (prevWait != nil) {
		t.s.setWaiting(th, th.inflight != nil)
	}
	if err != nil || !need {
		c.releaseSlot(th)
		if err != nil {
			return &TraceeError{Tid: th.tid, Op: "rewriting syscall " + syscallName(nr), Err: err}
		}
		return t.cont(th, 0)
	}
	if err := linux.PtraceSetRegs(th.tid, &regs); err != nil {
		c.releaseSlot(th)
		return ignoreGone(err)
	}
	if c.noExit {
		return t.cont(th, 0)
	}
	th.pending = c
	return ignoreGone(linux.PtraceSyscall(th.tid, 0))
}

func (t *tracer) syscallExit(th *thread) error {
	c := th.pending
	if c == nil {
		return t.cont(th, 0)
	}
	th.pending = nil
	defer c.releaseSlot(th)
	var regs linux.Regs
	if err := linux.PtraceGetRegs(th.tid, &regs); err != nil {
		return ignoreGone(err)
	}
	if c.exit != nil {
		if err := c.exit(t, th, c, &regs); err != nil && !gone(err) {
			return &TraceeError{Tid: th.tid, Op: "rewriting result of " + syscallName(c.saved.Orig_rax), Err: err}
		}
	}
	// The kernel preserves argument registers across a syscall; restore
	// the caller's (a restarted syscall must see its original arguments
	// and is rewritten again at its new seccomp stop).
	regs.Rdi, regs.Rsi, regs.Rdx = c.saved.Rdi, c.saved.Rsi, c.saved.Rdx
	regs.R10, regs.R8, regs.R9 = c.saved.R10, c.saved.R8, c.saved.R9
	if c.restoreNr {
		regs.Orig_rax = c.saved.Orig_rax
	}
	if err := linux.PtraceSetRegs(th.tid, &regs); err != nil {
		return ignoreGone(err)
	}
	return t.cont(th, 0)
}

// gone reports an error from a tracee that vanished or whose memory went
// away; the syscall's own result stands.
func gone(err error) bool {
	return err == nil || errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.EFAULT)
}

// scratch hands out the call's scratch slot: the thread's own slot for a
// call without an exit stop (it must stay valid while the syscall runs and
// if the kernel restarts it), a slot of its own otherwise.
func (c *call) scratch(th *thread) (uint64, bool) {
	if c.noExit {
		if th.slot == 0 {
			s, ok := th.as.alloc()
			if !ok {
				return 0, false
			}
			th.slot = s
		}
		return th.slot, true
	}
	if c.slot == 0 {
		s, ok := th.as.alloc()
		if !ok {
			return 0, false
		}
		c.slot = s
	}
	return c.slot, true
}

// releaseSlot frees the call's own slot (never the thread's).
func (c *call) releaseSlot(th *thread) {
	if !c.noExit {
		th.as.release(c.slot)
	}
}

// ours reports a pointer into the scratch region: a syscall the kernel
// restarts with the registers the supervisor left, already rewritten.
func ours(th *thread, addr uint64) bool {
	return th.as.scratch != 0 && addr >= th.as.scratch && addr < th.as.scratch+scratchSize
}

// ---- time struct rewriting helpers ----

// conv maps a virtual value to real (relative or absolute).
type conv func(ns int64) int64

func relWall(p *vclock.Params) conv {
	return func(ns int64) int64 { return int64(p.VirtToReal(time.Duration(ns))) }
}

// pausedWait is the real timeout of a wait entered or re-armed while the
// clock is paused: virtual time does not pass, so neither can the wait;
// the clock watcher re-arms it at resume (rearm.go).
const pausedWait = math.MaxInt64 / 4

// relWait is relWall for the timeout of a wait, which a pause suspends.
func relWait(p *vclock.Params) conv {
	return func(ns int64) int64 {
		if p.Paused && ns > 0 {
			return pausedWait
		}
		return int64(p.VirtToReal(time.Duration(ns)))
	}
}

func relCPU(p *vclock.Params) conv {
	return func(ns int64) int64 { return int64(p.CPUVirtToReal(time.Duration(ns))) }
}

func absWall(p *vclock.Params, id vclock.ClockID) conv {
	return func(ns int64) int64 {
		r, ok := p.RealDeadline(id, ns)
		if !ok {
			// Paused with the deadline ahead: it cannot come while paused.
			return pausedWait
		}
		return r
	}
}

// back maps a real remaining time to virtual.
func backWall(p *vclock.Params) conv {
	return func(ns int64) int64 { return int64(p.RealToVirt(time.Duration(ns))) }
}

func backCPU(p *vclock.Params) conv {
	return func(ns int64) int64 { return int64(p.CPURealToVirt(time.Duration(ns))) }
}

// rewriteTs copies the timespec at argument i, converted by f, into the
// call's scratch slot (offset off) and points the argument there.
func rewriteTs(th *thread, c *call, regs *linux.Regs, i int, off uint64, f conv) (bool, error) {
	return rewritePair(th, c, regs, i, off, f, tsToNs, nsToTs)
}

// rewriteTv is rewriteTs for a timeval, rounding the real value up.
func rewriteTv(th *thread, c *call, regs *linux.Regs, i int, off uint64, f conv) (bool, error) {
	return rewritePair(th, c, regs, i, off, f, tvToNs, nsToTvUp)
}

// rewritePair does rewriteTs and rewriteTv: the two-word time value at
// argument i is decoded, converted by f, encoded into the scratch slot and
// the argument pointed there. A value it cannot read or decode is left to
// the kernel, which reports EFAULT or EINVAL itself.
func rewritePair(th *thread, c *call, regs *linux.Regs, i int, off uint64, f conv,
	decode func(a, b int64) (int64, bool), encode func(int64) (int64, int64)) (bool, error) {
	addr := arg(regs, i)
	if addr == 0 || ours(th, addr) {
		c.ours = addr != 0
		return false, nil
	}
	m := mem{th.tid}
	v, err := m.read(addr, 2)
	if err != nil {
		return false, nil
	}
	ns, ok := decode(v[0], v[1])
	if !ok {
		return false, nil
	}
	c.virt = ns
	slot, ok := c.scratch(th)
	if !ok {
		return false, errNoScratch
	}
	a, b := encode(f(ns))
	if err := m.write(slot+off, a, b); err != nil {
		return false, err
	}
	c.wrote = [2]int64{a, b}
	setArg(regs, i, slot+off)
	return true, nil
}

// scaleTsAt converts the n timespecs at addr in place (remaining times,
// timer values the kernel wrote).
func scaleTsAt(m mem, addr uint64, n int, f conv) error {
	return scalePairsAt(m, addr, n, f, tsToNs, nsToTs)
}

// scaleTvAt is scaleTsAt for timevals (truncating to microseconds, except
// that a positive remaining time stays positive).
func scaleTvAt(m mem, addr uint64, n int, f conv) error {
	keepPositive := func(ns int64) int64 {
		r := f(ns)
		if ns > 0 && r < nsPerUsec {
			r = nsPerUsec
		}
		return r
	}
	return scalePairsAt(m, addr, n, keepPositive, tvToNs, nsToTvDown)
}

// scalePairsAt does scaleTsAt and scaleTvAt: each of the n two-word time
// values at addr that decodes is converted by f and encoded back in place.
func scalePairsAt(m mem, addr uint64, n int, f conv,
	decode func(a, b int64) (int64, bool), encode func(int64) (int64, int64)) error {
	if addr == 0 {
		return nil
	}
	v, err := m.read(addr, 2*n)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		ns, ok := decode(v[2*i], v[2*i+1])
		if !ok {
			continue
		}
		v[2*i], v[2*i+1] = encode(f(ns))
	}
	return m.write(addr, v...)
}

// copyBackTs writes the time left of a select-like call back to the
// caller's struct at argument i, in virtual time: from the recorded
// virtual deadline (right across a pause) when there is one, else from the
// kernel's updated value in the slot (offset off), when it changed it.
func copyBackTs(t *tracer, th *thread, c *call, i int, off uint64, tv bool) error {
	m := mem{th.tid}
	got, err := m.read(c.slot+off, 2)
	if err != nil || (got[0] == c.wrote[0] && got[1] == c.wrote[1]) {
		return err
	}
	var left int64
	var ok bool
	if tv {
		left, ok = tvToNs(got[0], got[1])
	} else {
		left, ok = tsToNs(got[0], got[1])
	}
	if !ok {
		return nil
	}
	left = backWall(&c.p)(left)
	if w := c.wait; w != nil && !w.abs {
		p, err := t.params(th)
		if err != nil {
			return err
		}
		if now, err := linux.ClockGettime(int32(vclock.Monotonic)); err == nil {
			left = max(0, w.deadline(now)-p.Virt(vclock.Monotonic, now))
		}
	}
	if tv {
		sec, usec := nsToTvDown(left)
		return m.write(arg(&c.saved, i), sec, usec)
	}
	sec, nsec := nsToTs(left)
	return m.write(arg(&c.saved, i), sec, nsec)
}
