package vclock

import (
	"math"
	"math/bits"
	"time"
)

// Base anchors one clock: at real time Real the clock read Virt.
type Base struct{ Real, Virt int64 }

// Params is the whole state of one virtual clock: one rate for every wall
// clock, one for CPU time, and a Base per static clock id. It is a value:
// methods that change it return a new Params.
type Params struct {
	TDF     TDF    // the factor in force, kept while paused for Resume
	Share   Share  // CPU share for CPU-time scaling
	Paused  bool   // virtual time frozen (Mult == 0)
	Mult    uint64 // round(2^32 / k), 0 while paused
	CPUMult uint64 // round(2^32 / (share x k))
	Bases   [NumClocks]Base
}

// Config describes a new virtual clock.
type Config struct {
	TDF   TDF       // required
	Share Share     // zero means FullShare
	Start time.Time // zero: virtual REALTIME starts at real REALTIME
}

// NewParams starts a clock at the readings now: every wall clock reads its
// real value (REALTIME, REALTIME_COARSE, REALTIME_ALARM and TAI start at
// c.Start instead when it is set, keeping their offsets to REALTIME).
func NewParams(c Config, now Now) (Params, error) {
	if err := c.TDF.Validate(); err != nil {
		return Params{}, err
	}
	if c.Share == (Share{}) {
		c.Share = FullShare
	}
	if err := c.Share.Validate(); err != nil {
		return Params{}, err
	}
	p := Params{TDF: c.TDF, Share: c.Share, Mult: c.TDF.Mult(), CPUMult: CPUMult(c.Share, c.TDF)}
	var shift int64
	if !c.Start.IsZero() {
		shift = c.Start.UnixNano() - now[Realtime]
	}
	for id := range ClockID(NumClocks) {
		if id.Kind() != KindWall {
			continue
		}
		v := now[id]
		if id == Realtime || id == RealtimeCoarse || id == RealtimeAlarm || id == TAI {
			v = addSat(v, shift)
		}
		p.Bases[id] = Base{Real: now[id], Virt: v}
	}
	return p, nil
}

// Virt maps a real reading of clock id to virtual time: wall clocks through
// their Base, CPU clocks by 1/s, others unchanged. Saturates at the int64
// range instead of wrapping.
func (p *Params) Virt(id ClockID, real int64) int64 {
	switch id.Kind() {
	case KindWall:
		b := p.Bases[id]
		return addSat(b.Virt, scale(subSat(real, b.Real), p.Mult))
	case KindCPU:
		return scale(real, p.CPUMult)
	}
	return real
}

// VirtNow is every wall clock's virtual reading at the real readings now.
func (p *Params) VirtNow(now Now) Now {
	var v Now
	for id := range ClockID(NumClocks) {
		if id.Kind() == KindWall {
			v[id] = p.Virt(id, now[id])
		}
	}
	return v
}

// rebase anchors every wall clock at now, keeping virtual time continuous.
func (p Params) rebase(now Now) Params {
	for id := range ClockID(NumClocks) {
		if id.Kind() == KindWall {
			p.Bases[id] = Base{Real: now[id], Virt: p.Virt(id, now[id])}
		}
	}
	return p
}

// SetTDF changes the rate at the instant now. Virtual time does not jump.
// A paused clock stays paused and resumes at k.
func (p Params) SetTDF(k TDF, now Now) (Params, error) {
	if err := k.Validate(); err != nil {
		return p, err
	}
	q := p.rebase(now)
	q.TDF = k
	q.CPUMult = CPUMult(q.Share, k)
	if !q.Paused {
		q.Mult = k.Mult()
	}
	return q, nil
}

// WithShare returns p with CPU share s: CPU-time scaling follows s x k
// (a node's share, in an experiment whose one clock carries another). s
// must be valid.
func (p Params) WithShare(s Share) Params {
	p.Share, p.CPUMult = s, CPUMult(s, p.TDF)
	return p
}

// Pause freezes every wall clock at its virtual reading at now.
func (p Params) Pause(now Now) Params {
	if p.Paused {
		return p
	}
	q := p.rebase(now)
	q.Paused, q.Mult = true, 0
	return q
}

// Resume lets virtual time run again at TDF from where it froze.
func (p Params) Resume(now Now) Params {
	if !p.Paused {
		return p
	}
	q := p.rebase(now)
	q.Paused, q.Mult = false, q.TDF.Mult()
	return q
}

// scale returns floor(d * m / 2^32) for signed d, saturating.
func scale(d int64, m uint64) int64 {
	if d >= 0 {
		hi, lo := bits.Mul64(uint64(d), m)
		if hi>>32 != 0 {
			return math.MaxInt64
		}
		q := hi<<32 | lo>>32
		if q > math.MaxInt64 {
			return math.MaxInt64
		}
		return int64(q)
	}
	// floor(-x) = -ceil(x) for x = |d| * m / 2^32.
	hi, lo := bits.Mul64(uint64(-d), m) // -MinInt64 wraps to 2^63, still right as uint64
	if hi>>32 != 0 {
		return math.MinInt64
	}
	q := hi<<32 | lo>>32
	if lo&(1<<32-1) != 0 {
		q++
	}
	if q > 1<<63 {
		return math.MinInt64
	}
	return -int64(q)
}

func addSat(a, b int64) int64 {
	s := a + b
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		if a >= 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}

func subSat(a, b int64) int64 {
	if b == math.MinInt64 {
		if a >= 0 {
			return math.MaxInt64
		}
		return a - b
	}
	return addSat(a, -b)
}
