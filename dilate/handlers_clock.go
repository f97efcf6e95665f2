package dilate

import (
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// Clock reads that reach the kernel (raw syscalls, CPU-time clocks, or
// every read when no replacement vDSO is mapped) are scaled at their exit.

func clockGettimeEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	id := vclock.ClockID(int32(regs.Rdi))
	if id.Kind() == vclock.KindOther {
		return false, nil
	}
	c.exit = func(t *tracer, th *thread, c *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		if id.Kind() == vclock.KindCPU {
			key := cpuKey{tgid: th.tgid, what: int(id)} // a negative id names its process or thread
			if id == vclock.ThreadCPUTime {
				key.tid = th.tid
			}
			return scaleTsAt(mem{th.tid}, c.saved.Rsi, 1, func(ns int64) int64 { return t.cpuVirt(key, ns, c.p) })
		}
		return scaleTsAt(mem{th.tid}, c.saved.Rsi, 1, func(ns int64) int64 { return c.p.Virt(id, ns) })
	}
	return true, nil
}

func gettimeofdayEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	if regs.Rdi == 0 {
		return false, nil
	}
	c.exit = func(_ *tracer, th *thread, c *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		return scaleTvAt(mem{th.tid}, c.saved.Rdi, 1, func(ns int64) int64 { return c.p.Virt(vclock.Realtime, ns) })
	}
	return true, nil
}

// timeEntry follows the replacement vDSO: time() is REALTIME_COARSE.
func timeEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	c.exit = func(_ *tracer, th *thread, c *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		v := c.p.Virt(vclock.RealtimeCoarse, int64(regs.Rax)*nsPerSec) / nsPerSec
		regs.Rax = uint64(v)
		if c.saved.Rdi != 0 {
			return mem{th.tid}.write(c.saved.Rdi, v)
		}
		return nil
	}
	return true, nil
}

// getrusageEntry scales ru_utime and ru_stime (two timevals at offset 0).
func getrusageEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	c.exit = func(t *tracer, th *thread, c *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		who := int(int32(c.saved.Rdi)) // SELF 0, CHILDREN -1, THREAD 1
		key := cpuKey{tgid: th.tgid, what: 100 + 2*who}
		if who == 1 {
			key.tid = th.tid
		}
		field := 0
		return scaleTvAt(mem{th.tid}, c.saved.Rsi, 2, func(ns int64) int64 {
			k := key
			k.what += field // utime, then stime
			field++
			return t.cpuVirt(k, ns, c.p)
		})
	}
	return true, nil
}

// timesEntry scales the four CPU times and the elapsed-ticks result (which
// counts from boot: mapped as BOOTTIME).
func timesEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	c.exit = func(_ *tracer, th *thread, c *call, regs *linux.Regs) error {
		if e := retErrno(regs); e != 0 && e < 4096 && int64(regs.Rax) > -4096 {
			return nil
		}
		const tick = nsPerSec / userHZ
		regs.Rax = uint64(c.p.Virt(vclock.Boottime, int64(regs.Rax)*tick) / tick)
		if c.saved.Rdi == 0 {
			return nil
		}
		m := mem{th.tid}
		v, err := m.read(c.saved.Rdi, 4)
		if err != nil {
			return err
		}
		for i := range v {
			v[i] = t.cpuVirt(cpuKey{tgid: th.tgid, what: 200 + i}, v[i]*tick, c.p) / tick
		}
		return m.write(c.saved.Rdi, v...)
	}
	return true, nil
}

// sysinfoEntry scales the uptime (seconds, the first field).
func sysinfoEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	c.exit = func(_ *tracer, th *thread, c *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 || c.saved.Rdi == 0 {
			return nil
		}
		m := mem{th.tid}
		v, err := m.read(c.saved.Rdi, 1)
		if err != nil {
			return err
		}
		return m.write(c.saved.Rdi, c.p.Virt(vclock.Boottime, v[0]*nsPerSec)/nsPerSec)
	}
	return true, nil
}
