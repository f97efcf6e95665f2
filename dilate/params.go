package dilate

import (
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

// paramCache gives the trace loop the clock's current parameters without
// decoding the page at every stop: it reloads only when the seqlock
// sequence moved. (A full load right after the supervisor wakes from an
// idle wait costs ~50 us on the target machine, most of a rewritten
// call's cost.)
type paramCache struct {
	view  *clock.View
	page  []byte // the view's read-only mapping
	seq   uint64 // sequence the cached params were loaded at
	p     vclock.Params
	valid bool
}

func newParamCache(v *clock.View) *paramCache { return &paramCache{view: v, page: v.Page()} }

// get returns the parameters in force. A writer inside the seqlock (odd
// sequence) or a changed sequence means a fresh load.
func (c *paramCache) get() (vclock.Params, error) {
	s := linux.SharedLoad64(c.page, vclock.PageOffSeq)
	if c.valid && s == c.seq && s&1 == 0 {
		return c.p, nil
	}
	p, seq, err := c.view.LoadSeq()
	if err != nil {
		return p, err
	}
	c.p, c.seq, c.valid = p, seq, true
	return p, nil
}
