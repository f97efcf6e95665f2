package live

import "sort"

// chunkPages is how many pages one chunk of a page table covers (2 MiB).
const (
	chunkPages = 512
	chunkShift = 21
)

// chunk is the engine's state of 512 consecutive pages of one process:
// the content each holds (NoCID: in the process), and for the aging clock
// the epoch it was last seen written (or was evicted, or came back) and
// its heat: how many times it came back soon after being evicted, each
// doubling the time it must stay cold before it is evicted again.
type chunk struct {
	held  [chunkPages]CID
	seen  [chunkPages]uint32
	heat  [chunkPages]uint8
	nheld int32
}

// maxHeat caps the backoff (2^7 = 128 times the cold threshold); a page
// that cannot be stored usefully (unique and incompressible) gets it.
const maxHeat = 7

// pageTable maps page addresses to their chunk.
type pageTable struct {
	chunks map[uint64]*chunk
}

func newPageTable() pageTable { return pageTable{chunks: map[uint64]*chunk{}} }

// at returns the chunk of addr and its index there, creating the chunk
// (with every page seen at epoch) if create.
func (pt *pageTable) at(addr uint64, create bool, epoch uint32) (*chunk, int) {
	k := addr >> chunkShift
	c := pt.chunks[k]
	if c == nil && create {
		c = &chunk{}
		for i := range c.seen {
			c.seen[i] = epoch
		}
		pt.chunks[k] = c
	}
	return c, int(addr>>12) & (chunkPages - 1)
}

// held returns the content page addr is held with (NoCID: not held).
func (pt *pageTable) held(addr uint64) CID {
	c, i := pt.at(addr, false, 0)
	if c == nil {
		return NoCID
	}
	return c.held[i]
}

// set records addr as held with id (NoCID: back in the process).
func (pt *pageTable) set(addr uint64, id CID, epoch uint32) {
	c, i := pt.at(addr, true, epoch)
	switch {
	case c.held[i] == NoCID && id != NoCID:
		c.nheld++
	case c.held[i] != NoCID && id == NoCID:
		c.nheld--
	}
	c.held[i] = id
}

// each calls f for every held page in [start, end).
func (pt *pageTable) each(start, end uint64, f func(addr uint64, id CID)) {
	visit := func(k uint64, c *chunk) {
		if c.nheld == 0 {
			return
		}
		base := k << chunkShift
		for i := range c.held {
			a := base + uint64(i)<<12
			if c.held[i] != NoCID && a >= start && a < end {
				f(a, c.held[i])
			}
		}
	}
	// walk the range's chunks, or every chunk when that is fewer
	if n := (end - start) >> chunkShift; n <= uint64(len(pt.chunks)) {
		for k := start >> chunkShift; k <= (end-1)>>chunkShift; k++ {
			if c := pt.chunks[k]; c != nil {
				visit(k, c)
			}
		}
		return
	}
	for k, c := range pt.chunks {
		visit(k, c)
	}
}

// drop forgets the aging state of whole chunks inside [start, end) that
// hold nothing (an unmapped range).
func (pt *pageTable) drop(start, end uint64) {
	for k, c := range pt.chunks {
		if c.nheld == 0 && k<<chunkShift >= start && (k+1)<<chunkShift <= end {
			delete(pt.chunks, k)
		}
	}
}

// span is a range of addresses [start, end).
type span struct{ start, end uint64 }

// spans is a sorted set of disjoint ranges.
type spans []span

// add returns s with [start, end) added (merged with neighbours).
func (s spans) add(start, end uint64) spans {
	if start >= end {
		return s
	}
	out := make(spans, 0, len(s)+1)
	placed := false
	for _, r := range s {
		switch {
		case r.end < start:
			out = append(out, r)
		case r.start > end:
			if !placed {
				out = append(out, span{start, end})
				placed = true
			}
			out = append(out, r)
		default: // overlaps or touches: merge
			start, end = min(start, r.start), max(end, r.end)
		}
	}
	if !placed {
		out = append(out, span{start, end})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

// remove returns s without [start, end).
func (s spans) remove(start, end uint64) spans {
	out := make(spans, 0, len(s)+1)
	for _, r := range s {
		if r.end <= start || r.start >= end {
			out = append(out, r)
			continue
		}
		if r.start < start {
			out = append(out, span{r.start, start})
		}
		if r.end > end {
			out = append(out, span{end, r.end})
		}
	}
	return out
}

// missing returns the parts of [start, end) not in s.
func (s spans) missing(start, end uint64) []span {
	var out []span
	cur := start
	for _, r := range s {
		if r.end <= cur || r.start >= end {
			continue
		}
		if r.start > cur {
			out = append(out, span{cur, r.start})
		}
		cur = max(cur, r.end)
	}
	if cur < end {
		out = append(out, span{cur, end})
	}
	return out
}
