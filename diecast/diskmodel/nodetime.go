package diskmodel

import (
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

// NodeTime is the node's time, the time the model's holds and rates are
// in: the experiment's clock (ClockTime: pauses and changes of k reach an
// operation while it is held) or a fixed factor of real time (FixedTime).
type NodeTime interface {
	// Now is the node's monotonic time (ns) and the factor in force (0
	// while paused).
	Now() (int64, float64)
	// Until returns once the node's monotonic time has reached v.
	Until(w *Waiter, v int64)
}

// FixedTime is real monotonic time slowed by a fixed factor k >= 1.
type FixedTime struct {
	k      float64
	origin time.Time
}

// NewFixedTime starts a node time at k (its zero is now).
func NewFixedTime(k float64) *FixedTime { return &FixedTime{k: k, origin: time.Now()} }

// Now implements NodeTime.
func (f *FixedTime) Now() (int64, float64) {
	return int64(float64(time.Since(f.origin)) / f.k), f.k
}

// Until implements NodeTime.
func (f *FixedTime) Until(w *Waiter, v int64) {
	w.Until(f.origin.Add(time.Duration(float64(v) * f.k)))
}

// ClockTime is a clock page's virtual CLOCK_MONOTONIC (the experiment's
// clock, read through a read-only view).
type ClockTime struct{ v *clock.View }

// NewClockTime reads the node's time from v.
func NewClockTime(v *clock.View) *ClockTime { return &ClockTime{v: v} }

// chunk bounds one wait on a real deadline computed at one factor: a
// change of k (or a pause) made during it is seen at most this late.
const chunk = 10 * time.Millisecond

// pausedPoll is how often a wait checks whether a paused clock resumed.
const pausedPoll = time.Millisecond

// Now implements NodeTime. A clock that cannot be read (its page
// unmapped: the server is ending) reads as real time at k = 1.
func (c *ClockTime) Now() (int64, float64) {
	v, p, err := c.v.Now(vclock.Monotonic)
	if err != nil {
		r, _ := linux.ClockGettime(int32(vclock.Monotonic))
		return r, 1
	}
	if p.Paused {
		return v, 0
	}
	return v, p.TDF.Float64()
}

// Until implements NodeTime: it waits on the real deadline at which the
// clock's parameters in force reach v, in chunks, reading them again after
// each (and polling while the clock is paused).
func (c *ClockTime) Until(w *Waiter, v int64) {
	for {
		now, p, err := c.v.Now(vclock.Monotonic)
		if err != nil || now >= v {
			return
		}
		real, ok := p.RealDeadline(vclock.Monotonic, v)
		if !ok {
			time.Sleep(pausedPoll)
			continue
		}
		r, err := linux.ClockGettime(int32(vclock.Monotonic))
		if err != nil {
			return
		}
		w.Until(time.Now().Add(min(time.Duration(real-r), chunk)))
	}
}
