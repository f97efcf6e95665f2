package dilate

import (
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/ptrace"
	"github.com/vmux/vmux/rt/vclock"
)

// Re-arming armed timers after a rate change or a pause.
//
// timerfd, POSIX timer and ITIMER_REAL expirations live in the kernel as
// real times. After a clock change the supervisor runs, inside one thread
// of each process that armed timers (stopped by the watcher's kick), a
// gettime per timer (the real time left under the old parameters) and a
// relative settime with that time left and the interval converted under
// the new ones. While paused a timer cannot expire: it is set far away
// and its virtual time left is kept for the resume.

type timerKind int

const (
	timerFd timerKind = iota
	timerPosix
	timerItimer // setitimer/alarm; the key's id is which
)

type timerKey struct {
	kind timerKind
	id   uint64 // fd or timer id; 0 for the itimer
}

// armedTimer is what the supervisor knows of one armed timer.
type armedTimer struct {
	cpu      bool           // counts CPU time: converted by s = share x k, no pause
	id       vclock.ClockID // the timer's clock (MONOTONIC for ITIMER_REAL)
	interval int64          // virtual interval (0: one-shot)
	p        vclock.Params  // parameters it was last armed under
	vexp     int64          // virtual expiry on id, kept while armed paused
	gen      uint64         // clock page sequence it was last armed at
}

// recordTimer notes a settime of (kind, id) on clock clk with virtual
// interval and value (absolute if abs; zero disarms) from thread th.
func (t *tracer) recordTimer(th *thread, kind timerKind, id uint64, clk vclock.ClockID, interval, value int64, abs bool, p vclock.Params) {
	m := t.timers[th.tgid]
	if value == 0 {
		if m != nil {
			delete(m, timerKey{kind, id})
		}
		return
	}
	if m == nil {
		m = map[timerKey]*armedTimer{}
		t.timers[th.tgid] = m
	}
	a := &armedTimer{id: clk, interval: interval, p: p, gen: t.gen(), vexp: value}
	if clk.Kind() == vclock.KindCPU || (kind == timerItimer && id != itimerReal) {
		a.cpu = true
	} else if p.Paused && !abs {
		if now, err := linux.ClockGettime(int32(clk)); err == nil {
			a.vexp = satAdd(p.Virt(clk, now), value)
		}
	}
	m[timerKey{kind, id}] = a
	t.s.setTimerProc(th.tgid, th.tid)
}

// setTimerProc publishes a thread of a process with armed timers.
func (s *Supervisor) setTimerProc(tgid, tid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tid == 0 {
		delete(s.timerProcs, tgid)
	} else {
		s.timerProcs[tgid] = tid
	}
}

// timersStale reports whether th's process has timers armed under older
// parameters than gen.
func (t *tracer) timersStale(th *thread) bool {
	for _, a := range t.timers[th.tgid] {
		if a.gen != t.gen() {
			return true
		}
	}
	return false
}

// gen is the clock page's sequence at the last parameter load: it moves
// with every change of the clock.
func (t *tracer) gen() uint64 {
	return t.pcache.seq
}

// rearmTimers runs in a thread stopped at a kick's signal-delivery stop,
// with final the registers it must resume with (any restart of its
// interrupted syscall already applied). It re-arms every timer of the
// thread's process and resumes the thread.
func (t *tracer) rearmTimers(th *thread, final linux.Regs, p vclock.Params) error {
	if th.as.insn == 0 || th.as.scratch == 0 {
		return t.resume(th, final)
	}
	if th.slot == 0 {
		s, ok := th.as.alloc()
		if !ok {
			return &TraceeError{Tid: th.tid, Op: "re-arming timers", Err: errNoScratch}
		}
		th.slot = s
	}
	// Resuming from a signal-delivery stop runs the kernel's restart
	// logic on the registers; the injected calls must not be restarted,
	// so apply it to final now, as the kernel would for a signal without
	// a handler, and mark the thread as not in a syscall.
	final, _ = ptrace.RestartRegs(final)
	final.Orig_rax = ^uint64(0)
	in := t.newInjector(th.tid, final, th.as.insn)
	m := mem{th.tid}
	for key, a := range t.timers[th.tgid] {
		if a.gen == t.gen() {
			continue
		}
		vexp, ok := t.timerExpiry(in, m, th.slot, key, a)
		if !ok {
			delete(t.timers[th.tgid], key)
			continue
		}
		var valReal, intReal int64
		if a.cpu {
			// vexp is the virtual CPU time left.
			valReal = int64(p.CPUVirtToReal(time.Duration(vexp)))
			intReal = int64(p.CPUVirtToReal(time.Duration(a.interval)))
		} else {
			now, err := linux.ClockGettime(int32(a.id))
			if err != nil {
				continue
			}
			valReal = pausedWait
			if r, ok := p.RealDeadline(a.id, vexp); ok {
				valReal = r - now
			}
			if a.interval > 0 {
				intReal = relWall(&p)(a.interval)
			}
		}
		if err := t.timerSet(in, m, th.slot, key, intReal, valReal); err != nil {
			if err == errGone {
				return nil
			}
			delete(t.timers[th.tgid], key)
			continue
		}
		a.p, a.gen, a.vexp = p, t.gen(), vexp
	}
	if err := in.finish(); err != nil && err != errGone {
		return err
	}
	return nil
}

// timerExpiry reads a timer's real time left and returns the virtual time
// of its next expiry: the real expiry instant mapped under the parameters
// it was armed with (the kernel computed that instant under them); for a
// CPU-time timer, the virtual CPU time left. ok is false for a timer that
// is gone or no longer armed.
func (t *tracer) timerExpiry(in *injector, m mem, slot uint64, key timerKey, a *armedTimer) (int64, bool) {
	var err error
	switch key.kind {
	case timerFd:
		_, err = in.call(sysTimerfdGettime, key.id, slot)
	case timerPosix:
		_, err = in.call(sysTimerGettime, key.id, slot)
	case timerItimer:
		_, err = in.call(sysGetitimer, key.id, slot)
	}
	if err != nil {
		return 0, false
	}
	v, err := m.read(slot, 4)
	if err != nil {
		return 0, false
	}
	var left int64
	var ok bool
	if key.kind == timerItimer {
		left, ok = tvToNs(v[2], v[3])
	} else {
		left, ok = tsToNs(v[2], v[3])
	}
	if !ok || left == 0 {
		return 0, false // disarmed (or expired one-shot)
	}
	if a.cpu {
		return int64(a.p.CPURealToVirt(time.Duration(left))), true
	}
	if a.p.Paused {
		return a.vexp, true
	}
	now, err := linux.ClockGettime(int32(a.id))
	if err != nil {
		return 0, false
	}
	return a.p.Virt(a.id, satAdd(now, left)), true
}

// timerSet arms a timer relatively with real interval and value.
func (t *tracer) timerSet(in *injector, m mem, slot uint64, key timerKey, interval, value int64) error {
	value = max(value, 1) // armed: never disarm by rounding
	if key.kind == timerItimer {
		is, ius := nsToTvUp(interval)
		vs, vus := nsToTvUp(value)
		if err := m.write(slot, is, ius, vs, vus); err != nil {
			return err
		}
		_, err := in.call(sysSetitimer, key.id, slot, 0)
		return err
	}
	is, ins := nsToTs(interval)
	vs, vns := nsToTs(value)
	if err := m.write(slot, is, ins, vs, vns); err != nil {
		return err
	}
	nr := uint64(sysTimerfdSettime)
	if key.kind == timerPosix {
		nr = sysTimerSettime
	}
	_, err := in.call(nr, key.id, 0, slot, 0)
	return err
}

// resume sets the registers and lets the thread go.
func (t *tracer) resume(th *thread, regs linux.Regs) error {
	if err := linux.PtraceSetRegs(th.tid, &regs); err != nil {
		return ignoreGone(err)
	}
	return t.cont(th, 0)
}
