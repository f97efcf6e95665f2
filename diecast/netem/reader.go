package netem

import (
	"errors"
	"syscall"
	"time"
)

// reader moves the packets node src sends into the first pipe of their
// path. One goroutine per endpoint; it stops when the endpoint is closed.
// Endpoints that read several packets per call take them in batches, under
// one lock.
func (e *Emulator) reader(src int) {
	ep := e.eps[src]
	bat, _ := ep.(batcher)
	var bufs [][]byte
	var sizes []int
	if bat != nil && bat.batchSize() > 1 {
		bufs, sizes = readBufs(bat.batchSize())
	} else {
		bat = nil
		bufs, sizes = [][]byte{make([]byte, e.opts.MaxPacket)}, []int{0}
	}
	pend := make([]packet, 0, len(bufs))
	var backoff time.Duration
	for {
		var n int
		var err error
		if bat != nil {
			n, err = bat.readBatch(bufs, sizes)
		} else {
			sizes[0], err = ep.Read(bufs[0])
			n = 1
		}
		if err != nil {
			if e.closed.Load() || errClosed(err) {
				return
			}
			if e.ctr.readErrs.Add(1)%1000 == 1 {
				e.log.Warn("reading endpoint", "node", e.net.Nodes[src].Name, "err", err)
			}
			// A failing device (gone or down) must not spin: back off, up
			// to 100 ms, until Close. A malformed packet is just dropped.
			var errno syscall.Errno
			if bat != nil && !errors.As(err, &errno) {
				continue
			}
			backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
			select {
			case <-e.done:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		pend = pend[:0]
		for i := 0; i < n; i++ {
			if pk, ok := e.classify(src, bufs[i][:sizes[i]]); ok {
				pend = append(pend, pk)
			}
		}
		if len(pend) == 0 {
			continue
		}
		wake := false
		e.mu.Lock()
		// Read the clock under the lock: offers to every pipe then come in
		// time order (the scheduler's too), which the queue model needs.
		now := e.now()
		for _, pk := range pend {
			if e.enter(e.paths[pk.path][0], pk, now) {
				wake = true
			}
		}
		e.mu.Unlock()
		if wake {
			e.kick()
		}
	}
}

// classify counts a packet node src sent, finds its path, and copies it
// into a pooled buffer (after headroom). Packets that are not IPv4 or have
// no destination node are counted and dropped.
func (e *Emulator) classify(src int, pkt []byte) (packet, bool) {
	e.ctr.received.Add(1)
	n := len(pkt)
	if n < 20 || pkt[0]>>4 != 4 {
		e.ctr.notIPv4.Add(1) // IPv6 (router solicitations etc.) and runts
		return packet{}, false
	}
	dst, ok := e.addr[[4]byte(pkt[16:20])]
	if !ok || int(dst) == src {
		e.ctr.noRoute.Add(1)
		return packet{}, false
	}
	buf := getBuf(headroom + n)
	copy((*buf)[headroom:], pkt)
	return packet{buf: buf, n: int32(n), path: int32(src*e.nodes + int(dst))}, true
}

// enter offers pk to pipe p at time now (ns). It queues it or drops it,
// and reports whether the scheduler must wake earlier than planned.
// Called with e.mu held.
func (e *Emulator) enter(p *pipe, pk packet, now int64) bool {
	p.st.Packets++
	p.st.Bytes += uint64(pk.n)
	if v := e.admitFlight(p, &pk); v != pass {
		p.st.countFlightDrop(v)
		putBuf(pk.buf)
		return false
	}
	arrive, wait, v := p.m.offer(float64(now), int(pk.n))
	switch v {
	case dropQueue:
		p.st.QueueDrops++
		putBuf(pk.buf)
		return false
	case dropLoss:
		p.st.LossDrops++
		putBuf(pk.buf)
		return false
	}
	p.st.Sent++
	p.st.QueueDelay += int64(wait)
	if int64(wait) > p.st.MaxQueueDelay {
		p.st.MaxQueueDelay = int64(wait)
	}
	pk.at = int64(arrive)
	e.hold(p, &pk)
	if p.q.push(pk) {
		if p.heapI < 0 {
			e.heapPush(p)
		} else {
			e.heapFix(p.heapI)
		}
	}
	if pk.at < e.sleepUntil {
		e.sleepUntil = pk.at
		return true
	}
	return false
}
