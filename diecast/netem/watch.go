package netem

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// Flow is one direction of a TCP connection through the emulator: the
// packets from Src to Dst (IPv4 addresses and ports; v4-mapped IPv6 ones
// are unmapped).
type Flow struct{ Src, Dst netip.AddrPort }

// FlowWatch tells when the emulator first delivers a packet of each of
// its flows (diecast/tcpfreeze releases a socket held across a pause
// once the packet that acknowledges its data, normally held in flight by
// the pause, has reached it).
type FlowWatch struct {
	w       *watches
	entries []*flowEntry
	once    sync.Once
}

// WatchFlows starts watching flows: Seen(i) is closed once the emulator
// has written a TCP packet of flows[i] into its destination node, after
// this call. The write has then returned, and a TUN write hands the
// packet to the kernel's TCP before it returns: a locked socket has it in
// its backlog. Stop ends the watch; while nothing is watched, delivery
// costs one atomic load per batch more.
func (e *Emulator) WatchFlows(flows []Flow) *FlowWatch {
	fw := &FlowWatch{w: &e.watch}
	w := &e.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[flowKey][]*flowEntry{}
	}
	for _, f := range flows {
		en := &flowEntry{seen: make(chan struct{})}
		fw.entries = append(fw.entries, en)
		k, ok := keyOf(f)
		if !ok {
			continue // not IPv4: never delivered by this emulator
		}
		en.key = k
		w.m[k] = append(w.m[k], en)
		w.n.Add(1)
	}
	return fw
}

// Seen is closed at the first delivery of flow i (of WatchFlows's list).
func (fw *FlowWatch) Seen(i int) <-chan struct{} { return fw.entries[i].seen }

// Stop stops watching; the Seen channels not closed yet stay open. It is
// idempotent.
func (fw *FlowWatch) Stop() {
	fw.once.Do(func() {
		w := fw.w
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, en := range fw.entries {
			if en.done || !en.key.valid {
				continue
			}
			en.done = true
			l := w.m[en.key]
			for i, x := range l {
				if x == en {
					l = append(l[:i], l[i+1:]...)
					break
				}
			}
			if len(l) == 0 {
				delete(w.m, en.key)
			} else {
				w.m[en.key] = l
			}
			w.n.Add(-1)
		}
	})
}

// watches are the flows being watched, by key.
type watches struct {
	n  atomic.Int32 // entries in m: delivery parses no header while 0
	mu sync.Mutex   // guards m and the entries' done
	m  map[flowKey][]*flowEntry

	hits []*flowEntry // scheduler only: matched, to close after the write
}

type flowEntry struct {
	key  flowKey
	seen chan struct{}
	done bool
}

type flowKey struct {
	src, dst     [4]byte
	sport, dport uint16
	valid        bool
}

func keyOf(f Flow) (flowKey, bool) {
	s, d := f.Src.Addr().Unmap(), f.Dst.Addr().Unmap()
	if !s.Is4() || !d.Is4() {
		return flowKey{}, false
	}
	return flowKey{src: s.As4(), dst: d.As4(), sport: f.Src.Port(), dport: f.Dst.Port(), valid: true}, true
}

// match finds the watched flows of a batch about to be delivered (the
// scheduler calls it before deliver, which frees the buffers).
func (e *Emulator) match(batch []packet) {
	w := &e.watch
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range batch {
		pk := &batch[i]
		b := (*pk.buf)[headroom : headroom+int(pk.n)]
		ihl := int(b[0]&0x0f) * 4
		// TCP, first fragment, with its ports.
		if b[9] != 6 || ihl < 20 || len(b) < ihl+4 || b[6]&0x1f != 0 || b[7] != 0 {
			continue
		}
		k := flowKey{src: [4]byte(b[12:16]), dst: [4]byte(b[16:20]),
			sport: uint16(b[ihl])<<8 | uint16(b[ihl+1]), dport: uint16(b[ihl+2])<<8 | uint16(b[ihl+3]), valid: true}
		l, ok := w.m[k]
		if !ok {
			continue
		}
		for _, en := range l {
			en.done = true
			w.hits = append(w.hits, en)
		}
		delete(w.m, k)
		w.n.Add(-int32(len(l)))
	}
}

// signal closes the Seen channels of the flows just delivered.
func (e *Emulator) signal() {
	w := &e.watch
	for i, en := range w.hits {
		close(en.seen)
		w.hits[i] = nil
	}
	w.hits = w.hits[:0]
}
