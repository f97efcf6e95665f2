package netem

import "math"

// Bounds on what the delay line may hold. Every packet in a pipe holds a
// pooled buffer until it arrives, and the model itself bounds only the
// queue in front of a transmitter: without these, a link of long latency
// and unlimited bandwidth kept everything a node sent for the whole latency
// (a UDP blast grew the daemon by 2.2 GB in 6 s).
const (
	// DefaultMaxInFlight is Options.MaxInFlight's default: the packet
	// buffer memory all pipes together may hold.
	DefaultMaxInFlight = 256 << 20
	// DefaultUnlimitedInFlight is Options.UnlimitedInFlight's default: the
	// bytes one link of unlimited bandwidth may carry at once.
	DefaultUnlimitedInFlight = 16 << 20
	// flightSlack absorbs rounding in the bound of a link with a
	// bandwidth (one largest packet).
	flightSlack = 65536
)

// flight is what one pipe holds now: packet bytes (the model's unit) and
// the buffer memory behind them. Guarded by Emulator.mu.
type flight struct {
	bytes int64 // sum of packet sizes in the pipe's ring
	mem   int64 // sum of their buffer sizes
	limit int64 // most bytes the link may hold (flightLimit)
}

// flightLimit is the most bytes a link may hold between its entrance and
// its far end, the drop-tail queue and the propagation stage together. A
// link with a bandwidth physically holds at most its queue plus bandwidth
// x (latency + jitter): the model never exceeds that, so the bound only
// makes it an invariant. A link of unlimited bandwidth has no such bound
// (it passes anything at once into a delay line): it holds at most
// max(queue, unlimited) bytes, and what does not fit is dropped as by a
// full queue.
func flightLimit(m *model, unlimited int64) int64 {
	if m.nsPerByte == 0 {
		q := m.queue
		if math.IsInf(q, 1) {
			q = 0
		}
		return max(int64(q), unlimited)
	}
	b := m.queue + (m.delay+m.jitter)/m.nsPerByte + flightSlack
	if b > math.MaxInt64/2 {
		return math.MaxInt64 / 2
	}
	return int64(b)
}

// bufMem is the memory a packet's buffer takes, whatever the packet's size.
func bufMem(pk *packet) int64 { return int64(len(*pk.buf)) }

// admitFlight reports why pipe p cannot take pk now (pass if it can): the
// link is full (dropFlight) or the emulator holds its MaxInFlight of packet
// memory (dropMemory). A packet moving on to its next hop was released from
// the previous pipe first, so only new packets meet the memory bound.
// Called with e.mu held.
func (e *Emulator) admitFlight(p *pipe, pk *packet) verdict {
	if p.fl.bytes+int64(pk.n) > p.fl.limit {
		return dropFlight
	}
	if e.opts.MaxInFlight > 0 && e.memHeld+bufMem(pk) > e.opts.MaxInFlight {
		return dropMemory
	}
	return pass
}

// hold accounts pk as held by pipe p. Called with e.mu held.
func (e *Emulator) hold(p *pipe, pk *packet) {
	m := bufMem(pk)
	p.fl.bytes += int64(pk.n)
	p.fl.mem += m
	e.memHeld += m
}

// take pops the earliest packet of pipe p and releases what it held.
// Called with e.mu held.
func (e *Emulator) take(p *pipe) packet {
	pk := p.q.pop()
	m := bufMem(&pk)
	p.fl.bytes -= int64(pk.n)
	p.fl.mem -= m
	e.memHeld -= m
	return pk
}

// countFlightDrop counts a packet refused by admitFlight.
func (s *LinkStats) countFlightDrop(v verdict) {
	if v == dropMemory {
		s.MemoryDrops++
	} else {
		s.InFlightDrops++
	}
}

// Verdicts of admitFlight, after the model's own.
const (
	dropFlight verdict = dropLoss + 1 + iota // the link holds its most bytes in flight
	dropMemory                               // the emulator holds its MaxInFlight of packet memory
)
