package clock

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// writerGiveUp is how long a reader waits for a write to finish before it
// reports ErrWriterStuck (a write takes well under a microsecond; only an
// owner killed inside one leaves the sequence odd).
var writerGiveUp = 2 * time.Second

// View reads a clock through its own read-only mapping. Methods are safe
// for concurrent use.
type View struct {
	f   *os.File   // our own read-only descriptor of the page
	mu  sync.Mutex // guards mem (nil once closed)
	mem []byte
}

// Open maps the clock page behind f (any descriptor of it: the owner's
// ReadOnly, one inherited or received over a socket) read-only. The View
// keeps a read-only descriptor of its own; f may be closed afterwards.
func Open(f *os.File) (*View, error) {
	own, err := linux.ReopenReadOnly(f)
	if err != nil {
		return nil, fmt.Errorf("opening clock: %w", err)
	}
	mem, err := linux.MmapShared(own, vclock.PageSize, false)
	if err != nil {
		own.Close()
		return nil, fmt.Errorf("opening clock: %w", err)
	}
	v := &View{f: own, mem: mem}
	if _, err := v.Load(); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// Seq is the page's sequence: it changes (by 2) with every write, and is
// odd while one is under way. A reader that cached the parameters loaded
// at an even Seq may keep them while Seq stays the same.
func (v *View) Seq() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mem == nil {
		return 0
	}
	return linux.SharedLoad64(v.mem, vclock.PageOffSeq)
}

// Load returns the parameters in force.
func (v *View) Load() (vclock.Params, error) {
	p, _, err := v.LoadSeq()
	return p, err
}

// LoadSeq returns the parameters in force and the (even) sequence they
// were read at.
func (v *View) LoadSeq() (vclock.Params, uint64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mem == nil {
		return vclock.Params{}, 0, fmt.Errorf("loading clock: %w", ErrClosed)
	}
	start := time.Now()
	for spins := 0; ; spins++ {
		s1 := linux.SharedLoad64(v.mem, vclock.PageOffSeq)
		if s1&1 == 0 {
			buf := snapshot(v.mem)
			if linux.SharedLoad64(v.mem, vclock.PageOffSeq) == s1 {
				p, err := vclock.DecodePage(buf)
				if err != nil {
					return vclock.Params{}, 0, fmt.Errorf("loading clock: %w", err)
				}
				return p, s1, nil
			}
			continue
		}
		if time.Since(start) > writerGiveUp {
			return vclock.Params{}, 0, fmt.Errorf("loading clock: %w (seq %d odd for %v)", ErrWriterStuck, s1, writerGiveUp)
		}
		if spins < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// Now returns the virtual reading of wall clock id now, and the
// parameters it was computed with. The real reading is taken inside the
// seqlock's read section, as the replacement vDSO does: a reader that
// read the real clock after a change with the parameters from before it
// could see virtual time step back.
func (v *View) Now(id vclock.ClockID) (int64, vclock.Params, error) {
	for {
		v.mu.Lock()
		if v.mem == nil {
			v.mu.Unlock()
			return 0, vclock.Params{}, fmt.Errorf("reading clock: %w", ErrClosed)
		}
		s1 := linux.SharedLoad64(v.mem, vclock.PageOffSeq)
		real, rerr := linux.ClockGettime(int32(id))
		v.mu.Unlock()
		if rerr != nil {
			return 0, vclock.Params{}, fmt.Errorf("reading clock: %w", rerr)
		}
		p, s2, err := v.LoadSeq()
		if err != nil {
			return 0, p, err
		}
		if s1 == s2 {
			return p.Virt(id, real), p, nil
		}
	}
}

// Page is the read-only mapping itself, for readers that decode it on
// their own hot path (it stays valid until Close).
func (v *View) Page() []byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.mem
}

// ReadOnly returns a new read-only descriptor of the page (the caller
// closes it), as Clock.ReadOnly does.
func (v *View) ReadOnly() (*os.File, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mem == nil {
		return nil, fmt.Errorf("sharing clock: %w", ErrClosed)
	}
	return linux.ReopenReadOnly(v.f)
}

// Source is anything that hands out read-only descriptors of a clock
// page: a Clock (the owner) or a View.
type Source interface {
	ReadOnly() (*os.File, error)
}

var (
	_ Source = (*Clock)(nil)
	_ Source = (*View)(nil)
)

// File is the View's read-only descriptor of the page, to map it into
// another process (it stays owned by the View).
func (v *View) File() *os.File { return v.f }

// Close unmaps the page and closes the View's descriptor.
func (v *View) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mem == nil {
		return nil
	}
	err := linux.Munmap(v.mem)
	v.mem = nil
	if cerr := v.f.Close(); err == nil {
		err = cerr
	}
	return err
}
