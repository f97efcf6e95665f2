package vdso

import (
	"fmt"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// Seqlock write and read sides over c.mem. Callers hold c.mu.

// lock enters the write side: seq even -> odd by CAS, then records the
// writer's pid. A writer found dead inside the lock (seq odd for a while,
// its pid gone) is replaced: the page is repaired from the backup and the
// lock is taken over with seq left odd.
func (c *Clock) lock() error {
	start := time.Now()
	var stuckSeq uint64
	for spins := 0; ; spins++ {
		s := linux.SharedLoad64(c.mem, vclock.PageOffSeq)
		if s&1 == 0 {
			if linux.SharedCAS64(c.mem, vclock.PageOffSeq, s, s+1) {
				linux.SharedStore32(c.mem, vclock.PageOffWriter, c.pid)
				return nil
			}
			continue
		}
		if stuckSeq != s {
			stuckSeq, start = s, time.Now()
		}
		waited := time.Since(start)
		if waited > writerCheckAfter {
			w := linux.SharedLoad32(c.mem, vclock.PageOffWriter)
			// A writer that died before recording its pid leaves 0.
			dead := (w != 0 && !linux.ProcessAlive(int(w))) || (w == 0 && waited > writerGiveUp/2)
			if dead && linux.SharedCAS32(c.mem, vclock.PageOffWriter, w, c.pid) {
				c.log.Warn("clock writer died inside the seqlock; repairing", "clock", c.name, "pid", w, "seq", s)
				c.recover()
				return nil
			}
		}
		if waited > writerGiveUp {
			w := linux.SharedLoad32(c.mem, vclock.PageOffWriter)
			return fmt.Errorf("locking clock page: %w (pid %d, seq %d, %v)", ErrWriterStuck, w, s, waited.Round(time.Millisecond))
		}
		yield(spins)
	}
}

// unlock leaves the write side: seq odd -> even.
func (c *Clock) unlock() {
	linux.SharedStore32(c.mem, vclock.PageOffPhase, phaseIdle)
	linux.SharedStore32(c.mem, vclock.PageOffWriter, 0)
	linux.SharedAdd64(c.mem, vclock.PageOffSeq, 1)
}

// recover restores the data a dead writer may have half-written.
func (c *Clock) recover() {
	if linux.SharedLoad32(c.mem, vclock.PageOffPhase) == phaseWriting {
		for off := 8; off < vclock.PageUsed; off += 4 {
			if skipWord(off) {
				continue
			}
			linux.SharedStore32(c.mem, off, linux.SharedLoad32(c.mem, vclock.PageOffBackup+off))
		}
	}
	linux.SharedStore32(c.mem, vclock.PageOffPhase, phaseIdle)
}

// skipWord reports the 32-bit words owned by the seqlock itself.
func skipWord(off int) bool {
	return off == vclock.PageOffWriter || off == vclock.PageOffPhase
}

// write stores p: backup first, then the fields, each phase recorded.
func (c *Clock) write(p *vclock.Params) {
	var buf [vclock.PageSize]byte
	_ = vclock.EncodePage(buf[:], p) // buf has the right size
	linux.SharedStore32(c.mem, vclock.PageOffPhase, phaseBackup)
	for off := 8; off < vclock.PageUsed; off += 4 {
		if !skipWord(off) {
			linux.SharedStore32(c.mem, vclock.PageOffBackup+off, linux.SharedLoad32(c.mem, off))
		}
	}
	linux.SharedStore32(c.mem, vclock.PageOffPhase, phaseWriting)
	for off := 8; off < vclock.PageUsed; off += 4 {
		if !skipWord(off) {
			linux.SharedStore32(c.mem, off, le32(buf[off:]))
		}
	}
}

// snapshot copies the data words (caller holds the write side or checks seq).
func (c *Clock) snapshot() []byte {
	buf := make([]byte, vclock.PageSize)
	for off := 8; off < vclock.PageUsed; off += 4 {
		put32(buf[off:], linux.SharedLoad32(c.mem, off))
	}
	return buf
}

// load is the read side: retry while odd or changed. A writer that stays
// inside too long is checked (and repaired if dead) through lock.
func (c *Clock) load() (vclock.Params, error) {
	start := time.Now()
	for spins := 0; ; spins++ {
		s1 := linux.SharedLoad64(c.mem, vclock.PageOffSeq)
		if s1&1 == 0 {
			buf := c.snapshot()
			if linux.SharedLoad64(c.mem, vclock.PageOffSeq) == s1 {
				p, err := vclock.DecodePage(buf)
				if err != nil {
					return vclock.Params{}, fmt.Errorf("loading clock %s: %w", c.name, err)
				}
				return p, nil
			}
			continue
		}
		if time.Since(start) > writerCheckAfter {
			// lock waits for a live writer and repairs after a dead one.
			if err := c.lock(); err != nil {
				return vclock.Params{}, fmt.Errorf("loading clock %s: %w", c.name, err)
			}
			c.unlock()
			start = time.Now()
		}
		yield(spins)
	}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// watchInterval is how often the owner's watchdog looks for a dead writer.
const watchInterval = 100 * time.Millisecond

// watch repairs the page when a writer died inside the seqlock, so that
// tracees spinning in the replacement vDSO resume within ~watchInterval
// even if the supervisor makes no Load meanwhile. It runs in the process
// that created the clock (the supervisor) until Close.
func (c *Clock) watch() {
	defer close(c.done)
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	var oddSeq uint64
	var since time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		if c.mem == nil {
			c.mu.Unlock()
			return
		}
		s := linux.SharedLoad64(c.mem, vclock.PageOffSeq)
		switch {
		case s&1 == 0:
			oddSeq = 0
		case s != oddSeq:
			oddSeq, since = s, time.Now()
		default:
			w := linux.SharedLoad32(c.mem, vclock.PageOffWriter)
			dead := (w != 0 && !linux.ProcessAlive(int(w))) || (w == 0 && time.Since(since) > writerGiveUp/2)
			if dead && linux.SharedCAS32(c.mem, vclock.PageOffWriter, w, c.pid) {
				c.log.Warn("clock writer died inside the seqlock; repaired by the watchdog", "clock", c.name, "pid", w, "seq", s)
				c.recover()
				c.unlock()
			}
		}
		c.mu.Unlock()
	}
}
