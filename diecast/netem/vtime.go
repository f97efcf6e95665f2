package netem

import (
	"math"
	"sync"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

// vtime is the emulator's time base in virtual mode (Options.Clock): the
// experiment clock's virtual CLOCK_MONOTONIC, so that a pause freezes
// every packet in flight (no deadline comes) and a change of k reaches
// them at once (the model keeps the links' virtual parameters: their real
// rates and delays follow k by themselves, and nothing is reordered or
// dropped by the change).
//
// Reading it costs a load of the page's sequence and a multiplication:
// the parameters are cached and reloaded when the sequence moves. The
// real reading is the Go runtime's monotonic clock anchored to
// CLOCK_MONOTONIC once (time.Since, no syscall), taken inside the
// sequence check as the replacement vDSO does, so virtual time never
// steps back across a change.
type vtime struct {
	view *clock.View
	page []byte

	// mu guards the cache (readers and the scheduler share it).
	mu    sync.Mutex
	seq   uint64
	p     vclock.Params
	k     float64 // current factor as a float (for real-time conversions)
	valid bool

	anchor     time.Time // a Go time at which CLOCK_MONOTONIC read monoAnchor
	monoAnchor int64
	base       int64 // virtual monotonic at the emulator's start
}

func newVtime(v *clock.View) (*vtime, error) {
	mono, err := linux.ClockGettime(int32(vclock.Monotonic))
	if err != nil {
		return nil, err
	}
	t := &vtime{view: v, page: v.Page(), anchor: time.Now(), monoAnchor: mono}
	now, _, err := t.read()
	if err != nil {
		return nil, err
	}
	t.base = now
	return t, nil
}

// realMono is CLOCK_MONOTONIC now.
func (t *vtime) realMono() int64 { return t.monoAnchor + int64(time.Since(t.anchor)) }

// read returns virtual monotonic now (absolute) and the parameters used.
func (t *vtime) read() (int64, vclock.Params, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		s1 := linux.SharedLoad64(t.page, vclock.PageOffSeq)
		if !t.valid || s1 != t.seq {
			p, seq, err := t.view.LoadSeq()
			if err != nil {
				return 0, p, err
			}
			t.p, t.seq, t.k, t.valid = p, seq, p.TDF.Float64(), true
			continue
		}
		real := t.realMono()
		if linux.SharedLoad64(t.page, vclock.PageOffSeq) == s1 {
			return t.p.Virt(vclock.Monotonic, real), t.p, nil
		}
	}
}

// now is virtual ns since the emulator started. A clock that can no
// longer be read (its owner died inside a write) stops time.
func (t *vtime) now() int64 {
	v, _, err := t.read()
	if err != nil {
		return t.last()
	}
	return v - t.base
}

// last is the last virtual time known, for a clock that went unreadable.
func (t *vtime) last() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.p.Virt(vclock.Monotonic, t.p.Bases[vclock.Monotonic].Real) - t.base
}

// state returns the current factor and whether the clock is paused.
func (t *vtime) state() (k float64, paused bool) {
	_, p, err := t.read()
	if err != nil {
		return 1, true
	}
	return p.TDF.Float64(), p.Paused
}

// toReal converts a virtual duration into the real time it takes now
// (MaxInt64 while paused).
func (t *vtime) toReal(d int64) int64 {
	k, paused := t.state()
	if paused {
		return math.MaxInt64
	}
	r := float64(d) * k
	if r >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(r)
}
