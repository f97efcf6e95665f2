package dilate

import (
	"fmt"
	"os"
	"strconv"

	"github.com/vmux/vmux/dilate/vdso"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// paramCache gives the trace loop the clock's current parameters without
// decoding the page at every stop: it maps the page read-only and reloads
// only when the seqlock sequence moved. (A full load right after the
// supervisor wakes from an idle wait costs ~50 us on the target machine,
// most of a rewritten call's cost.)
type paramCache struct {
	clock *vdso.Clock
	page  []byte // read-only view of the clock page
	seq   uint64 // sequence the cached params were loaded at
	p     vclock.Params
	valid bool
}

func newParamCache(clock *vdso.Clock) (*paramCache, error) {
	f, err := os.Open("/proc/self/fd/" + strconv.Itoa(clock.Fd()))
	if err != nil {
		return nil, fmt.Errorf("opening the clock page: %w", err)
	}
	defer f.Close()
	page, err := linux.MmapShared(f, vclock.PageSize, false)
	if err != nil {
		return nil, fmt.Errorf("mapping the clock page: %w", err)
	}
	return &paramCache{clock: clock, page: page}, nil
}

// get returns the parameters in force. A writer inside the seqlock (odd
// sequence) or a changed sequence means a fresh load.
func (c *paramCache) get() (vclock.Params, error) {
	s := linux.SharedLoad64(c.page, vclock.PageOffSeq)
	if c.valid && s == c.seq && s&1 == 0 {
		return c.p, nil
	}
	p, err := c.clock.Load()
	if err != nil {
		return p, err
	}
	// s was read before the load: if the page changed meanwhile the next
	// call sees another sequence and loads again.
	c.p, c.seq, c.valid = p, s, true
	return p, nil
}

func (c *paramCache) close() {
	if c.page != nil {
		_ = linux.Munmap(c.page)
		c.page = nil
	}
}
