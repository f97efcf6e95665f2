package dilate

import (
	"errors"
	"math"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

var errNoScratch = errors.New("no free scratch slot (too many concurrent rewritten syscalls)")

// sleepEntry handles nanosleep (clockArg < 0: MONOTONIC, relative) and
// clock_nanosleep. An interrupted relative sleep reports its remaining
// time (rem) scaled to virtual, also when restart_syscall resumes it.
func sleepEntry(clockArg, reqArg, flagsArg, remArg int) entryFunc {
	return func(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
		id := vclock.Monotonic
		if clockArg >= 0 {
			id = vclock.ClockID(int32(arg(regs, clockArg)))
		}
		abs := flagsArg >= 0 && arg(regs, flagsArg)&timerAbstime != 0
		var f, back conv
		switch id.Kind() {
		case vclock.KindWall:
			f, back = t.relSleep(&c.p), backWall(&c.p)
			if abs {
				f = absWall(&c.p, id)
			}
		case vclock.KindCPU:
			f, back = relCPU(&c.p), backCPU(&c.p)
			if abs {
				f = relCPU(&c.p) // CPU clocks have no base: scale the value
			}
		default:
			return false, nil
		}
		rem := arg(regs, remArg)
		if !abs && clockArg >= 0 {
			c.noExit = true
			if need, err, ok := t.absSleep(th, c, regs, id, clockArg, reqArg, flagsArg, rem); ok {
				return need, err
			}
		}
		c.noExit = abs || rem == 0 // nothing to scale at exit
		need, err := rewriteTs(th, c, regs, reqArg, 0, f)
		if need && id.Kind() == vclock.KindWall {
			c.recordWait(c.saved.Orig_rax, reqArg, false, abs, id, c.virt)
		}
		if !need || err != nil || c.noExit {
			return need, err
		}
		c.exit = func(_ *tracer, th *thread, _ *call, regs *linux.Regs) error {
			e := retErrno(regs)
			if e != errnoEINTR && e != errRestartBlock {
				return nil
			}
			scale := func(m mem) error { return scaleTsAt(m, rem, 1, back) }
			if e == errRestartBlock {
				th.restart = scale
			}
			return scale(mem{th.tid})
		}
		return true, nil
	}
}

func constRelTs(i int) entryFunc {
	return func(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
		c.noExit = true
		return waitTs(t, th, c, regs, i, false, vclock.Monotonic)
	}
}

func constAbsTs(i int, id vclock.ClockID) entryFunc {
	return func(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
		c.noExit = true
		return waitTs(t, th, c, regs, i, true, id)
	}
}

// waitTs rewrites the timespec timeout at argument i of a waiting call
// (relative, or absolute on id) and records the wait for re-arming.
func waitTs(t *tracer, th *thread, c *call, regs *linux.Regs, i int, abs bool, id vclock.ClockID) (bool, error) {
	f := t.relSleep(&c.p)
	if abs {
		f = absWall(&c.p, id)
	}
	need, err := rewriteTs(th, c, regs, i, 0, f)
	if need && err == nil {
		c.recordWait(c.saved.Orig_rax, i, false, abs, id, c.virt)
	}
	return need, err
}

func inoutRel(i int, tv bool) entryFunc {
	return func(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
		var need bool
		var err error
		if tv {
			need, err = rewriteTv(th, c, regs, i, 0, t.relSleep(&c.p))
		} else {
			need, err = rewriteTs(th, c, regs, i, 0, t.relSleep(&c.p))
		}
		if need {
			// The time left written back is computed from the virtual
			// deadline, so that it stays right across a pause.
			c.recordWait(c.saved.Orig_rax, i, false, false, vclock.Monotonic, c.virt)
			if c.wait != nil {
				// recvmmsg returns EINTR and never restarts: not re-armed.
				c.wait.self = c.saved.Orig_rax != sysRecvmmsg
			}
			c.exit = func(t *tracer, th *thread, c *call, _ *linux.Regs) error {
				return copyBackTs(t, th, c, i, 0, tv)
			}
		}
		return need, err
	}
}

// msTimeout scales an int millisecond timeout (the filter passes only
// positive ones), rounding up and saturating at INT_MAX.
func msTimeout(i int) entryFunc {
	return func(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
		ms := int64(int32(arg(regs, i)))
		if ms <= 0 {
			return false, nil
		}
		real := t.relSleep(&c.p)(ms * int64(time.Millisecond))
		rms := (real + int64(time.Millisecond) - 1) / int64(time.Millisecond)
		if rms > math.MaxInt32 || real == math.MaxInt64 {
			rms = math.MaxInt32
		}
		setArg(regs, i, uint64(rms))
		c.noExit = true // poll restarts through its restart block, epoll never
		c.recordWait(c.saved.Orig_rax, i, true, false, vclock.Monotonic, ms*int64(time.Millisecond))
		return true, nil
	}
}

// futexEntry rewrites the timeout of the waiting operations (the filter
// passes only those, with a non-NULL timeout): FUTEX_WAIT's is relative,
// the others' absolute on MONOTONIC, or REALTIME with FUTEX_CLOCK_REALTIME
// (FUTEX_LOCK_PI always REALTIME).
func futexEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	c.noExit = true
	op := uint32(regs.Rsi)
	id := vclock.Monotonic
	if op&futexClockRealtime != 0 {
		id = vclock.Realtime
	}
	switch op & futexCmdMask {
	case futexWait:
		return waitTs(t, th, c, regs, 3, false, vclock.Monotonic)
	case futexLockPI:
		return waitTs(t, th, c, regs, 3, true, vclock.Realtime)
	case futexWaitBitset, futexWaitRequeuePI, futexLockPI2:
		return waitTs(t, th, c, regs, 3, true, id)
	}
	return false, nil
}

// futexWaitvEntry converts futex_waitv's absolute deadline on clockid (arg 4).
func futexWaitvEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	id := vclock.ClockID(int32(regs.R8))
	if id != vclock.Monotonic && id != vclock.Realtime {
		return false, nil // the kernel rejects it
	}
	c.noExit = true
	return waitTs(t, th, c, regs, 3, true, id)
}

func isSockTimeo(regs *linux.Regs) bool {
	if int32(regs.Rsi) != solSocket {
		return false
	}
	switch int32(regs.Rdx) {
	case soRcvtimeoOld, soSndtimeoOld, soRcvtimeoNew, soSndtimeoNew:
		return true
	}
	return false
}

// setsockoptEntry scales SO_RCVTIMEO/SO_SNDTIMEO (a timeval, or the same
// 16-byte layout for the _NEW names).
func setsockoptEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	if !isSockTimeo(regs) || int32(regs.R8) < 16 {
		return false, nil
	}
	c.noExit = true
	return rewriteTv(th, c, regs, 3, 0, relWall(&c.p))
}

func getsockoptEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	if !isSockTimeo(regs) || regs.R10 == 0 {
		return false, nil
	}
	c.exit = func(_ *tracer, th *thread, c *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		return scaleTvAt(mem{th.tid}, c.saved.R10, 1, backWall(&c.p))
	}
	return true, nil
}
