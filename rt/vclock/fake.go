package vclock

import (
	"sync"
	"time"
)

// Fake is a Source for tests: every clock starts at a fixed reading and
// advances only when told. It is safe for concurrent use.
type Fake struct {
	mu  sync.Mutex
	now Now
}

// NewFake returns a fake whose wall clocks read start (REALTIME-like ids at
// start plus wallOffset, to keep the clocks distinct as on a real machine).
func NewFake(start, wallOffset int64) *Fake {
	f := &Fake{}
	for id := range ClockID(NumClocks) {
		f.now[id] = start
		if id == Realtime || id == RealtimeCoarse || id == RealtimeAlarm || id == TAI {
			f.now[id] = start + wallOffset
		}
	}
	f.now[TAI] += 37 * int64(time.Second)
	return f
}

// Now returns the current fake readings.
func (f *Fake) Now() Now {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves every clock by d (a negative d steps them back, as a
// settimeofday would step REALTIME).
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.now {
		f.now[i] += int64(d)
	}
}
