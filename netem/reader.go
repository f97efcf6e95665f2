package netem

import "time"

// reader moves the packets node src sends into the first pipe of their
// path. One goroutine per endpoint; it stops when the endpoint is closed.
func (e *Emulator) reader(src int) {
	ep := e.eps[src]
	scratch := make([]byte, e.opts.MaxPacket)
	row := src * e.nodes
	var backoff time.Duration
	for {
		n, err := ep.Read(scratch)
		if err != nil {
			if e.closed.Load() || errClosed(err) {
				return
			}
			// A persistent error (interface gone or down) must not spin:
			// back off, up to 100 ms, until Close.
			if e.ctr.readErrs.Add(1)%1000 == 1 {
				e.log.Warn("reading endpoint", "node", e.net.Nodes[src].Name, "err", err)
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
		e.ctr.received.Add(1)
		pkt := scratch[:n]
		if n < 20 || pkt[0]>>4 != 4 {
			e.ctr.notIPv4.Add(1) // IPv6 (router solicitations etc.) and runts
			continue
		}
		dst, ok := e.addr[[4]byte(pkt[16:20])]
		if !ok || int(dst) == src {
			e.ctr.noRoute.Add(1)
			continue
		}
		pi := row + int(dst)
		path := e.paths[pi]
		buf := getBuf(n)
		copy(*buf, pkt)
		now := e.now()
		e.mu.Lock()
		wake := e.enter(path[0], packet{buf: buf, n: int32(n), path: int32(pi)}, now)
		e.mu.Unlock()
		if wake {
			e.kick()
		}
	}
}

// enter offers pk to pipe p at time now (ns). It queues it or drops it,
// and reports whether the scheduler must wake earlier than planned.
// Called with e.mu held.
func (e *Emulator) enter(p *pipe, pk packet, now int64) bool {
	p.st.Packets++
	p.st.Bytes += uint64(pk.n)
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
