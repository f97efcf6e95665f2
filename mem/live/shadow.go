package live

import "github.com/vmux/vmux/mem/pageindex"

// shadowIndex remembers the hashes of pages left in their process because
// they were unique and incompressible when their turn came (KSM's
// unstable tree plays this part): when an identical page turns up later,
// it is stored, and the page remembered is made a candidate again, so
// that it shares the new content at the next turn of the clock. Bounded:
// the oldest entries go first. Used on the injector thread only.
type shadowIndex struct {
	m    map[hashKey]shadowEntry
	ring []hashKey
	next int
}

type shadowEntry struct {
	target uint32
	addr   uint64
}

// shadowSize bounds the index (about 40 bytes an entry; it grows to that
// only as pages are left in place).
const shadowSize = 1 << 16

// seen reports whether a page identical to page (of t at addr) was left
// in place before; if so that page is re-queued. If not, page is
// remembered.
func (s *shadowIndex) seen(t *target, addr uint64, page []byte, e *Engine) bool {
	if s.m == nil {
		s.m = map[hashKey]shadowEntry{}
	}
	k := hashKey{t.group, pageindex.Hash(page)}
	if old, ok := s.m[k]; ok && (old.target != t.id || old.addr != addr) {
		delete(s.m, k)
		e.requeue(old.target, old.addr)
		return true
	}
	if len(s.ring) < shadowSize {
		s.ring = append(s.ring, k)
	} else {
		delete(s.m, s.ring[s.next])
		s.ring[s.next] = k
		s.next = (s.next + 1) % shadowSize
	}
	s.m[k] = shadowEntry{t.id, addr}
	return false
}

// requeue makes page addr of target id a candidate at the next clock turn
// (its heat cleared, its last write moved back by a threshold).
func (e *Engine) requeue(id uint32, addr uint64) {
	e.mu.Lock()
	t := e.targets[id]
	e.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c, i := t.pt.at(addr, false, 0)
	if c == nil || c.held[i] != NoCID {
		return
	}
	c.heat[i] = 0
	c.seen[i] -= t.threshold
}
