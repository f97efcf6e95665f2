package dilate

import (
	"fmt"
	"strconv"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// Sleep accuracy. A dilated wait pays a seccomp stop at entry: the
// supervisor must wake, read and rewrite the call, and resume the tracee
// before the kernel starts its timer. Two measures keep that out of the
// sleep's length (docs/design/time-dilation.md, "Sleep accuracy"):
//
//   - A relative wait's real timeout is shortened by the time the
//     supervisor spent between waking for the stop and writing the
//     timeout, so it counts from the moment the supervisor saw the call,
//     which is never earlier than the call itself: a wait cannot end
//     early in virtual time.
//   - A relative clock_nanosleep on MONOTONIC or REALTIME (glibc's
//     nanosleep, usleep) with no remaining-time output becomes an absolute
//     sleep on MONOTONIC, to the same deadline: then neither the
//     supervisor's work nor the tracee's resumption after the stop counts.
//     (The kernel runs relative REALTIME sleeps on MONOTONIC too.)
//     With a remaining-time output (glibc's sleep, libstdc++'s sleep_for)
//     it skips the exit stop too, which would add a second stop's
//     latency after the sleep: an interrupting signal's delivery stop
//     writes the virtual time left instead (remainingAtSignal).
//   - The tracees run with a small timer slack (traceeSlack), set by the
//     launcher before exec and inherited by every descendant.

// traceeSlack is the tracees' timer slack in ns (the kernel's default is
// 50 us). Slack is real time, and the accuracy budget of a short dilated
// sleep is a fixed amount of real time (100 us: max(1%, 100 us / k) in
// virtual time); 5 us keeps slack a small part of it at any k.
const traceeSlack = 5000

// slackEnv passes the timer slack to the launcher.
const slackEnv = "VMUX_DILATE_SLACK"

// setSlack applies the launcher's timer slack, if one was given.
func setSlack(v string) error {
	if v == "" {
		return nil
	}
	ns, err := strconv.ParseUint(v, 10, 64)
	if err != nil || ns == 0 {
		return fmt.Errorf("bad %s %q: want a positive number of ns", slackEnv, v)
	}
	return linux.SetTimerSlack(ns)
}

// relSleep is relWait for the timeout of a wait rewritten at a seccomp
// stop, counted from when the supervisor woke for the stop (t.woke): the
// time spent since then is taken off the real timeout. The timeout is
// converted just before it is written, and the kernel starts the timer
// only after the tracee resumes, so the wait still lasts at least its
// real timeout from the moment the supervisor woke, which came after the
// call. A positive timeout stays positive.
func (t *tracer) relSleep(p *vclock.Params) conv {
	f := relWait(p)
	if t.s.cfg.PlainSleeps {
		return f
	}
	return func(ns int64) int64 {
		r := f(ns)
		if r <= 0 || r >= pausedWait {
			return r
		}
		return max(1, r-int64(time.Since(t.woke)+t.stopLead))
	}
}

// absSleep rewrites a relative clock_nanosleep on id into an absolute one
// on MONOTONIC ending at the supervisor's wake plus the real timeout (ok
// false: not applicable, rewrite it as relative). rem is the caller's
// remaining-time output (0: none), written at an interrupting signal.
// The clock id and flags registers then stay rewritten after the call, as
// the timespec pointer does (see doc.go); a restart re-executes the call
// as it is, and a re-arm (rearm.go) writes an absolute deadline.
func (t *tracer) absSleep(th *thread, c *call, regs *linux.Regs, id vclock.ClockID, clockArg, reqArg, flagsArg int, rem uint64) (need bool, err error, ok bool) {
	if t.s.cfg.PlainSleeps || c.p.Paused || (id != vclock.Monotonic && id != vclock.Realtime) {
		return false, nil, false
	}
	now, err := linux.ClockGettime(int32(vclock.Monotonic))
	if err != nil {
		return false, nil, false
	}
	woke := now - int64(time.Since(t.woke)+t.stopLead)
	rel := relWait(&c.p)
	need, err = rewriteTs(th, c, regs, reqArg, 0, func(ns int64) int64 { return satAdd(woke, rel(ns)) })
	if !need || err != nil {
		return need, err, true
	}
	setArg(regs, clockArg, uint64(vclock.Monotonic))
	setArg(regs, flagsArg, timerAbstime)
	c.recordWait(c.saved.Orig_rax, reqArg, false, false, vclock.Monotonic, c.virt)
	c.wait.absReal = true
	th.rem = rem
	return true, nil, true
}

// remainingAtSignal runs at a signal-delivery stop: if the thread is in a
// sleep made absolute by absSleep whose caller wants the time left, and
// the signal interrupted it, it writes the virtual time left to the
// caller's output (as the kernel would for a relative sleep). When the
// call is restarted rather than failed with EINTR, the output is only
// overwritten, which POSIX leaves unspecified.
func (t *tracer) remainingAtSignal(th *thread) error {
	w := th.inflight
	if th.rem == 0 || w == nil || !w.absReal {
		return nil
	}
	var regs linux.Regs
	if err := linux.PtraceGetRegs(th.tid, &regs); err != nil {
		return ignoreGone(err)
	}
	switch retErrno(&regs) {
	case errnoEINTR, errRestartSys, errRestartNoInt, errRestartNoHand, errRestartBlock:
	default:
		return nil
	}
	if regs.Orig_rax != w.nr || !ours(th, arg(&regs, w.arg)) {
		return nil
	}
	p, err := t.params(th)
	if err != nil {
		return err
	}
	now, err := linux.ClockGettime(int32(vclock.Monotonic))
	if err != nil {
		return nil
	}
	// The time left as of the supervisor's wake for this stop: the closest
	// it knows to the moment the signal interrupted the sleep.
	woke := now - int64(time.Since(t.woke))
	sec, nsec := nsToTs(max(0, w.deadline(now)-p.Virt(vclock.Monotonic, woke)))
	if err := (mem{th.tid}).write(th.rem, sec, nsec); err != nil && !gone(err) {
		return &TraceeError{Tid: th.tid, Op: "writing the time left of an interrupted sleep", Err: err}
	}
	return nil
}

// Stop latency. Between a tracee's syscall and the supervisor's wake lie
// the seccomp stop, the wake-up of the trace thread and a context switch:
// 60-100 us on the PVM guest the figures come from, never less than
// ~20 us. That time counts against a rewritten wait, so the supervisor
// takes a conservative lower bound of it (stopLead) off the real timeout
// too. The launcher measures it before exec: it reads CLOCK_MONOTONIC and
// makes a trapped call carrying the reading, probeCount times; the
// supervisor notes its own wake time minus the reading. stopLead is half
// the smallest sample, capped at maxStopLead: the samples are back to
// back, the fastest stops this run will see, and halving leaves room for
// a faster one later.
const (
	probeCount  = 16
	probeClock  = 0x7f00_0000 // an invalid clock id: the kernel returns EINVAL
	maxStopLead = 30 * time.Microsecond
)

// probeStops runs in the launcher, filtered, before exec.
func probeStops() {
	for range probeCount {
		now, err := linux.ClockGettime(int32(vclock.Monotonic))
		if err != nil {
			return
		}
		linux.ProbeStop(probeClock, now)
	}
}

// probeStop records one sample of the stop latency at the launcher's probe
// (clock id probeClock, its reading in the fourth argument).
func (t *tracer) probeStop(regs *linux.Regs) {
	if int32(regs.Rdi) != probeClock || t.s.cfg.PlainSleeps || t.probes >= probeCount {
		return
	}
	now, err := linux.ClockGettime(int32(vclock.Monotonic))
	if err != nil {
		return
	}
	lat := time.Duration(now-int64(regs.R10)) - time.Since(t.woke)
	if lat <= 0 {
		return
	}
	lead := min(lat/2, maxStopLead)
	if t.probes == 0 || lead < t.stopLead {
		t.stopLead = lead
	}
	t.probes++
	if t.probes == probeCount {
		t.s.log.Debug("stop latency probed", "lead", t.stopLead)
	}
}
