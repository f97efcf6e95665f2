package dilate

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// timerClock finds the clock of a timerfd (fdinfo "clockid:") or of a POSIX
// timer (/proc/PID/timers "ClockID:"), which the syscall does not carry.
func timerClock(tgid int, id uint64, fd bool) (vclock.ClockID, bool) {
	var path, key string
	if fd {
		path = "/proc/" + strconv.Itoa(tgid) + "/fdinfo/" + strconv.FormatUint(id, 10)
		key = "clockid:"
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, false
		}
		return findInt(string(b), key)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tgid) + "/timers")
	if err != nil {
		return 0, false
	}
	// Records start with "ID: n"; ClockID follows within the record.
	want := "ID: " + strconv.FormatInt(int64(int32(id)), 10)
	for _, rec := range strings.Split(string(b), "\nID: ") {
		if !strings.HasPrefix(rec, "ID: ") {
			rec = "ID: " + rec
		}
		first, _, _ := strings.Cut(rec, "\n")
		if strings.TrimSpace(first) == want {
			return findInt(rec, "ClockID:")
		}
	}
	return 0, false
}

func findInt(text, key string) (vclock.ClockID, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return 0, false
			}
			return vclock.ClockID(n), true
		}
	}
	return 0, false
}

// timerConvs returns the conversions for a timer on clock id: value
// (relative or absolute), interval, and the way back for remaining times.
func timerConvs(p *vclock.Params, id vclock.ClockID, abs bool) (value, interval, back conv) {
	if id.Kind() == vclock.KindCPU {
		return relCPU(p), relCPU(p), backCPU(p)
	}
	value = relWait(p) // a pause suspends the timer (timers.go)
	if abs {
		value = absWall(p, id)
	}
	return value, relWall(p), backWall(p)
}

// timerSettimeEntry handles timerfd_settime(fd, flags, new, old) and
// timer_settime(id, flags, new, old): the new itimerspec goes to scratch,
// the old one the kernel returns is scaled back in place.
func timerSettimeEntry(fd bool) entryFunc {
	return func(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
		id, ok := timerClock(th.tgid, regs.Rdi, fd)
		if !ok || id.Kind() == vclock.KindOther {
			return false, nil // bad id: the kernel reports it
		}
		value, interval, back := timerConvs(&c.p, id, regs.Rsi&timerAbstime != 0)
		old := regs.R10
		c.noExit = old == 0
		if ours(th, regs.Rdx) {
			return false, nil
		}
		m := mem{th.tid}
		v, err := m.read(regs.Rdx, 4)
		if err != nil {
			return false, nil
		}
		in, ok1 := tsToNs(v[0], v[1])
		val, ok2 := tsToNs(v[2], v[3])
		if !ok1 || !ok2 {
			return false, nil
		}
		slot, ok := c.scratch(th)
		if !ok {
			return false, errNoScratch
		}
		is, ins := nsToTs(interval(in))
		vs, vns := int64(0), int64(0)
		if val != 0 { // zero disarms, absolute or not
			vs, vns = nsToTs(value(val))
		}
		if err := m.write(slot, is, ins, vs, vns); err != nil {
			return false, err
		}
		regs.Rdx = slot
		kind := timerPosix
		if fd {
			kind = timerFd
		}
		t.recordTimer(th, kind, c.saved.Rdi, id, in, val, c.saved.Rsi&timerAbstime != 0, c.p)
		if c.noExit {
			return true, nil
		}
		c.exit = func(_ *tracer, th *thread, _ *call, regs *linux.Regs) error {
			if retErrno(regs) != 0 {
				return nil
			}
			return scaleTsAt(mem{th.tid}, old, 2, back)
		}
		return true, nil
	}
}

func timerGettimeEntry(fd bool) entryFunc {
	return func(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
		id, ok := timerClock(th.tgid, regs.Rdi, fd)
		if !ok || id.Kind() == vclock.KindOther {
			return false, nil
		}
		_, _, back := timerConvs(&c.p, id, false)
		cur := regs.Rsi
		c.exit = func(_ *tracer, th *thread, _ *call, regs *linux.Regs) error {
			if retErrno(regs) != 0 {
				return nil
			}
			return scaleTsAt(mem{th.tid}, cur, 2, back)
		}
		return true, nil
	}
}

func itimerConvs(p *vclock.Params, which int32) (to, back conv, ok bool) {
	switch which {
	case itimerReal:
		return relWall(p), backWall(p), true
	case itimerVirtual, itimerProf:
		return relCPU(p), backCPU(p), true
	}
	return nil, nil, false
}

// setitimerEntry: ITIMER_REAL follows the wall rate, ITIMER_VIRTUAL and
// ITIMER_PROF the CPU rate.
func setitimerEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	to, back, ok := itimerConvs(&c.p, int32(regs.Rdi))
	if !ok {
		return false, nil
	}
	old := regs.Rdx
	c.noExit = old == 0
	if regs.Rsi != 0 && !ours(th, regs.Rsi) {
		m := mem{th.tid}
		v, err := m.read(regs.Rsi, 4)
		if err != nil {
			return false, nil
		}
		in, ok1 := tvToNs(v[0], v[1])
		val, ok2 := tvToNs(v[2], v[3])
		if !ok1 || !ok2 {
			return false, nil
		}
		slot, ok := c.scratch(th)
		if !ok {
			return false, errNoScratch
		}
		is, ius := nsToTvUp(to(in))
		vs, vus := nsToTvUp(to(val))
		if err := m.write(slot, is, ius, vs, vus); err != nil {
			return false, err
		}
		regs.Rsi = slot
		t.recordTimer(th, timerItimer, uint64(int32(regs.Rdi)), vclock.Monotonic, in, val, false, c.p)
	}
	if c.noExit {
		return regs.Rsi != c.saved.Rsi, nil
	}
	c.exit = func(_ *tracer, th *thread, _ *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		return scaleTvAt(mem{th.tid}, old, 2, back)
	}
	return true, nil
}

func getitimerEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	_, back, ok := itimerConvs(&c.p, int32(regs.Rdi))
	if !ok {
		return false, nil
	}
	cur := regs.Rsi
	c.exit = func(_ *tracer, th *thread, _ *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		return scaleTvAt(mem{th.tid}, cur, 2, back)
	}
	return true, nil
}

// alarmEntry turns alarm(s) into setitimer(ITIMER_REAL) with microsecond
// precision (a whole-second alarm cannot express s x k for k < 1) and
// computes alarm's result from the old timer, as the kernel does.
func alarmEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	slot, ok := c.scratch(th)
	if !ok {
		return false, errNoScratch
	}
	secs := int64(uint32(regs.Rdi))
	vs, vus := nsToTvUp(int64(c.p.VirtToReal(time.Duration(secs) * time.Second)))
	m := mem{th.tid}
	if err := m.write(slot, 0, 0, vs, vus, 0, 0, 0, 0); err != nil {
		return false, err
	}
	t.recordTimer(th, timerItimer, itimerReal, vclock.Monotonic, 0, secs*nsPerSec, false, c.p)
	regs.Orig_rax = sysSetitimer
	regs.Rdi, regs.Rsi, regs.Rdx = itimerReal, slot, slot+32
	c.restoreNr = true
	c.exit = func(_ *tracer, th *thread, c *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		v, err := mem{th.tid}.read(c.slot+32, 4)
		if err != nil {
			return err
		}
		ns, ok := tvToNs(v[2], v[3])
		if !ok {
			return nil
		}
		left := int64(c.p.RealToVirt(time.Duration(ns)))
		sec, usec := nsToTvDown(left)
		if usec >= 500000 || (sec == 0 && left > 0) {
			sec++
		}
		regs.Rax = uint64(sec)
		return nil
	}
	return true, nil
}
