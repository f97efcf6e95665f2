package clock

import (
	"fmt"
	"os"
	"sync"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// MemfdName is the memfd name of every clock page (visible in
// /proc/PID/fd as /memfd:vmux-clock:NAME).
const MemfdName = "vmux-clock"

// Clock is the owner of one virtual clock: the only process that writes
// its page. Methods are safe for concurrent use.
type Clock struct {
	name string
	f    *os.File // the memfd, sealed against writes after mapping

	mu  sync.Mutex // serialises writers; guards mem (nil once closed)
	mem []byte     // the owner's read-write mapping
}

// New creates the clock called name (a run's or an experiment's name; it
// may be empty for an unnamed clock) and stores the parameters of a new
// virtual clock started now.
func New(name string, c vclock.Config) (*Clock, error) {
	p, err := vclock.NewParams(c, RealSource{}.Now())
	if err != nil {
		return nil, fmt.Errorf("creating clock: %w", err)
	}
	mname := MemfdName
	if name != "" {
		mname += ":" + name
	}
	f, err := linux.MemfdCreate(mname, vclock.PageSize)
	if err != nil {
		return nil, fmt.Errorf("creating clock: %w", err)
	}
	mem, err := linux.MmapShared(f, vclock.PageSize, true)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("creating clock: %w", err)
	}
	c0 := &Clock{name: name, f: f, mem: mem}
	c0.write(&p)
	if err := linux.MemfdSealReadOnly(f); err != nil {
		c0.Close()
		return nil, fmt.Errorf("creating clock: %w", err)
	}
	return c0, nil
}

// Name is the clock's name ("" for an unnamed clock).
func (c *Clock) Name() string { return c.name }

// ReadOnly returns a new read-only descriptor of the clock page, for a
// reader in this or another process (the caller closes it). Even reopened
// read-write, the sealed page cannot be written through it.
func (c *Clock) ReadOnly() (*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		return nil, fmt.Errorf("sharing clock: %w", ErrClosed)
	}
	return linux.ReopenReadOnly(c.f)
}

// View returns a reader of this clock (its own read-only mapping).
func (c *Clock) View() (*View, error) {
	f, err := c.ReadOnly()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Open(f)
}

// Close unmaps the page and closes the memfd. Readers keep their
// mappings (and the last parameters, for good).
func (c *Clock) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		return nil
	}
	err := linux.Munmap(c.mem)
	c.mem = nil
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("closing clock: %w", err)
	}
	return nil
}

// Load returns the current parameters.
func (c *Clock) Load() (vclock.Params, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		return vclock.Params{}, fmt.Errorf("loading clock: %w", ErrClosed)
	}
	// The owner's writers hold mu: the page is never mid-write here.
	return vclock.DecodePage(c.snapshot())
}

// Update runs f with the current parameters and real readings taken inside
// the write side of the seqlock, and stores its result. Taking the
// readings inside is what keeps virtual time monotonic: every reader that
// used the old parameters finished its real read before them.
func (c *Clock) Update(f func(old vclock.Params, now vclock.Now) (vclock.Params, error)) (vclock.Params, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		return vclock.Params{}, fmt.Errorf("updating clock: %w", ErrClosed)
	}
	old, err := vclock.DecodePage(c.snapshot())
	if err != nil {
		return vclock.Params{}, fmt.Errorf("updating clock: %w", err)
	}
	c.begin()
	p, err := f(old, RealSource{}.Now())
	if err == nil {
		err = p.Validate()
	}
	if err != nil {
		c.end()
		return vclock.Params{}, fmt.Errorf("updating clock: %w", err)
	}
	c.encode(&p)
	c.end()
	return p, nil
}

// Store replaces the parameters as they are (no re-basing: use SetTDF,
// Pause or Resume to change a running clock without a jump).
func (c *Clock) Store(p vclock.Params) error {
	_, err := c.Update(func(vclock.Params, vclock.Now) (vclock.Params, error) { return p, nil })
	return err
}

// SetTDF changes the factor of the running clock without a jump.
func (c *Clock) SetTDF(k vclock.TDF) (vclock.Params, error) {
	return c.Update(func(p vclock.Params, now vclock.Now) (vclock.Params, error) { return p.SetTDF(k, now) })
}

// Pause freezes virtual time for every reader.
func (c *Clock) Pause() (vclock.Params, error) {
	return c.Update(func(p vclock.Params, now vclock.Now) (vclock.Params, error) { return p.Pause(now), nil })
}

// Resume releases virtual time from where it froze.
func (c *Clock) Resume() (vclock.Params, error) {
	return c.Update(func(p vclock.Params, now vclock.Now) (vclock.Params, error) { return p.Resume(now), nil })
}
