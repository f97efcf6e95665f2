package dilate

import (
	"math"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// Re-arming blocked calls after a rate change or a pause.
//
// A rewritten wait records its virtual deadline (inflight). A watcher
// goroutine polls the run's clock; when the parameters change it sends
// SIGSTOP to every thread with a recorded wait. SIGSTOP cannot be blocked
// and, for a tracee, interrupts any wait; the tracer sees the
// signal-delivery stop first and suppresses it, so the program never
// stops. At that stop the interrupted call is re-issued (result set to
// ERESTARTNOINTR, which makes the kernel re-execute it on the way out)
// with its time left converted under the new parameters. A call that
// returns EINTR to a signal with no handler (epoll_wait) is restarted
// the same way, so the program sees nothing.

// watchEvery is how often the watcher polls the clock page's sequence
// (one load from a mapped page; the page is decoded only when it moved).
const watchEvery = 5 * time.Millisecond

// inflight is a rewritten wait in progress.
type inflight struct {
	nr  uint64
	arg int            // the argument holding the timeout
	ms  bool           // an int millisecond timeout, else a timespec
	abs bool           // deadline on clock id, else relative on MONOTONIC
	id  vclock.ClockID // clock of an absolute deadline
	// virt is the absolute deadline (abs) or the relative timeout; a
	// relative one is anchored at entry, under the parameters then.
	virt  int64
	entry time.Time     // when the call was rewritten (monotonic reading)
	p     vclock.Params // parameters at entry
	// absReal: a relative wait the supervisor made absolute on MONOTONIC
	// (sleeps.go): a re-arm writes a real deadline, not a timeout.
	absReal bool
	// self: the kernel writes the time left back to the caller's struct
	// (select, pselect6, ppoll), which the exit stop scales to virtual;
	// re-issuing the call with its original arguments is then enough.
	self bool
}

// recordWait notes the call's virtual timeout; the deadline of a relative
// one is only computed if a re-arm needs it (rearm.go), so that the
// common path costs no clock syscall.
func (c *call) recordWait(nr uint64, arg int, ms, abs bool, id vclock.ClockID, virt int64) {
	c.wait = &inflight{nr: nr, arg: arg, ms: ms, abs: abs, id: id, virt: virt, entry: time.Now(), p: c.p}
}

// deadline is the wait's virtual deadline: absolute on w.id, or on
// MONOTONIC for a relative wait (its virtual time at entry plus the
// timeout). nowMono is the real MONOTONIC reading now.
func (w *inflight) deadline(nowMono int64) int64 {
	if w.abs {
		return w.virt
	}
	atEntry := nowMono - int64(time.Since(w.entry))
	return satAdd(w.p.Virt(vclock.Monotonic, atEntry), w.virt)
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// setWaiting publishes which threads are in a recorded wait.
func (s *Supervisor) setWaiting(th *thread, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.waiting[th.tid] = th.tgid
	} else {
		delete(s.waiting, th.tid)
	}
}

// takeKick reports (and consumes) a SIGSTOP the watcher sent to tid.
func (s *Supervisor) takeKick(tid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kicks[tid] == 0 {
		return false
	}
	s.kicks[tid]--
	return true
}

// forgetKicks drops kicks still owed to an exited thread (its tid may be
// reused).
func (s *Supervisor) forgetKicks(tid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.kicks, tid)
}

// watchClock kicks waiting threads whenever the clock's parameters change.
func (s *Supervisor) watchClock(stop <-chan struct{}) {
	pc := newParamCache(s.view)
	last, _ := pc.get()
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p, err := pc.get()
		if err != nil || p == last {
			continue
		}
		last = p
		s.mu.Lock()
		kicked := map[int]bool{}
		for tid, tgid := range s.waiting {
			if linux.PtraceTgkill(tgid, tid, int(syscall.SIGSTOP)) == nil {
				s.kicks[tid]++
				kicked[tgid] = true
			}
		}
		// Processes with armed timers need one stopped thread each.
		for tgid, tid := range s.timerProcs {
			if kicked[tgid] {
				continue
			}
			if linux.PtraceTgkill(tgid, tid, int(syscall.SIGSTOP)) != nil {
				tid = tgid
				if linux.PtraceTgkill(tgid, tid, int(syscall.SIGSTOP)) != nil {
					continue
				}
			}
			s.kicks[tid]++
		}
		s.mu.Unlock()
	}
}

// rearm runs at the signal-delivery stop of a kick.
func (t *tracer) rearm(th *thread) error {
	w := th.inflight
	var regs linux.Regs
	if err := linux.PtraceGetRegs(th.tid, &regs); err != nil {
		return ignoreGone(err)
	}
	e := retErrno(&regs)
	interrupted := e == errnoEINTR || e == errRestartSys || e == errRestartNoInt ||
		e == errRestartNoHand || e == errRestartBlock
	p, err := t.params(th)
	if err != nil {
		return err
	}
	if w == nil || !interrupted || (regs.Orig_rax != w.nr && regs.Orig_rax != sysRestartSyscall) {
		// Not (or no longer) in its wait: nothing to re-arm. The kick may
		// still have interrupted another blocking call; one that would
		// return EINTR (epoll_wait) is restarted instead, since no
		// handler runs for a suppressed signal.
		th.inflight = nil
		t.s.setWaiting(th, false)
		if e == errnoEINTR && int64(regs.Orig_rax) >= 0 {
			regs.Rax = ^uint64(errRestartNoInt - 1)
		}
		return t.finishKick(th, regs, p)
	}
	if w.self {
		if e == errnoEINTR {
			regs.Rax = ^uint64(errRestartNoInt - 1)
		}
		return t.finishKick(th, regs, p)
	}
	var real int64
	if w.abs {
		real = absWall(&p, w.id)(w.virt)
	} else {
		now, err := linux.ClockGettime(int32(vclock.Monotonic))
		if err != nil {
			return &TraceeError{Tid: th.tid, Op: "re-arming a wait", Err: err}
		}
		real = relWait(&p)(max(0, w.deadline(now)-p.Virt(vclock.Monotonic, now)))
		if w.absReal {
			real = satAdd(now, real)
		}
	}
	if w.ms {
		ms := (real + int64(time.Millisecond) - 1) / int64(time.Millisecond)
		if ms > math.MaxInt32 {
			ms = math.MaxInt32
		}
		setArg(&regs, w.arg, uint64(ms))
		th.passNext = true
	} else {
		if th.slot == 0 {
			s, ok := th.as.alloc()
			if !ok {
				return &TraceeError{Tid: th.tid, Op: "re-arming a wait", Err: errNoScratch}
			}
			th.slot = s
		}
		sec, nsec := nsToTs(real)
		if err := (mem{th.tid}).write(th.slot, sec, nsec); err != nil {
			return ignoreGone(err)
		}
		setArg(&regs, w.arg, th.slot)
	}
	regs.Orig_rax = w.nr
	regs.Rax = ^uint64(errRestartNoInt - 1) // -ERESTARTNOINTR: the kernel re-executes it
	th.restart = nil
	return t.finishKick(th, regs, p)
}

// finishKick resumes a kicked thread with regs, re-arming its process's
// timers first if they were armed under older parameters.
func (t *tracer) finishKick(th *thread, regs linux.Regs, p vclock.Params) error {
	if t.timersStale(th) {
		return t.rearmTimers(th, regs, p)
	}
	return t.resume(th, regs)
}
