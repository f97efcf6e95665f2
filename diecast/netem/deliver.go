package netem

// maxWriteBatch bounds the packets written to one endpoint per call; each
// write buffer has room for a coalesced 64 KiB super-packet.
const maxWriteBatch = 64

// deliver writes a batch of due packets to their destination endpoints
// and frees their buffers. Packets to batching endpoints are grouped per
// destination (keeping their order) and written together, so the TUN can
// coalesce them.
func (e *Emulator) deliver(batch []packet) {
	e.touched = e.touched[:0]
	for i := range batch {
		pk := &batch[i]
		d := e.pdst[pk.path]
		if e.batchers[d] != nil {
			if len(e.pend[d]) == 0 {
				e.touched = append(e.touched, d)
			}
			e.pend[d] = append(e.pend[d], int32(i))
			continue
		}
		if _, err := e.eps[d].Write((*pk.buf)[headroom : headroom+int(pk.n)]); err != nil && !e.closed.Load() {
			e.ctr.writeErrs.Add(1)
		} else {
			e.ctr.delivered.Add(1)
		}
		putBuf(pk.buf)
		pk.buf = nil
	}
	for _, d := range e.touched {
		idx := e.pend[d]
		for len(idx) > 0 {
			k := min(len(idx), maxWriteBatch)
			if e.wbufs == nil {
				e.wbufs = make([][]byte, maxWriteBatch)
				for j := range e.wbufs {
					e.wbufs[j] = make([]byte, headroom+65536)
				}
			}
			out := e.wout[:0]
			for j, i := range idx[:k] {
				pk := &batch[i]
				w := e.wbufs[j][:headroom+int(pk.n)]
				copy(w[headroom:], (*pk.buf)[headroom:headroom+int(pk.n)])
				out = append(out, w)
				putBuf(pk.buf)
				pk.buf = nil
			}
			if _, err := e.batchers[d].writeBatch(out, headroom); err != nil && !e.closed.Load() {
				e.ctr.writeErrs.Add(uint64(k))
			} else {
				e.ctr.delivered.Add(uint64(k))
			}
			// Coalescing may have swapped the buffers around: hand each
			// back at full length for the next batch.
			for j := range out {
				e.wbufs[j] = out[j][:cap(out[j])]
			}
			e.wout = out[:0]
			idx = idx[k:]
		}
		e.pend[d] = e.pend[d][:0]
	}
}
