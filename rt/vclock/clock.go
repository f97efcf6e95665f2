package vclock

import (
	"sync"
	"time"
)

// Clock is an in-process virtual clock over a Source: the same Params and
// the same operations as the shared clock page, for code that dilates its
// own notion of time (and for tests, over a Fake). Safe for concurrent use.
type Clock struct {
	src Source

	mu sync.Mutex // guards p
	p  Params
}

// NewClock starts a virtual clock at the source's current readings.
func NewClock(src Source, c Config) (*Clock, error) {
	p, err := NewParams(c, src.Now())
	if err != nil {
		return nil, err
	}
	return &Clock{src: src, p: p}, nil
}

// Params returns a copy of the current parameters.
func (c *Clock) Params() Params {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p
}

// Read returns the virtual reading of wall clock id now (ns).
func (c *Clock) Read(id ClockID) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.Virt(id, c.src.Now()[id])
}

// Now returns virtual REALTIME as a time.Time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.Read(Realtime)) }

// SetTDF changes the factor without a jump in virtual time.
func (c *Clock) SetTDF(k TDF) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.p.SetTDF(k, c.src.Now())
	if err != nil {
		return err
	}
	c.p = p
	return nil
}

// Pause freezes virtual time.
func (c *Clock) Pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p = c.p.Pause(c.src.Now())
}

// Resume releases virtual time from where it froze.
func (c *Clock) Resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p = c.p.Resume(c.src.Now())
}
