package netem

import "time"

// LinkStats counts what one directed link did: Packets = Sent + QueueDrops
// + LossDrops + InFlightDrops + MemoryDrops. A lost packet used the link's
// bandwidth but never arrives.
type LinkStats struct {
	ID            int
	From, To      string
	Packets       uint64 // offered
	Bytes         uint64 // offered
	Sent          uint64 // passed on to the far end
	QueueDrops    uint64 // dropped because the drop-tail queue was full
	LossDrops     uint64 // dropped by random loss
	QueueDelay    int64  // total ns packets that were sent waited in the queue
	MaxQueueDelay int64  // longest such wait, ns
	Backlog       int64  // bytes queued or in transmission when sampled

	// InFlightDrops: dropped because the link held its most bytes at once
	// (Options.UnlimitedInFlight; inflight.go); MemoryDrops: because the
	// emulator held its Options.MaxInFlight of packet memory. InFlight is
	// the bytes between the link's ends (queue and propagation) when
	// sampled.
	InFlightDrops uint64
	MemoryDrops   uint64
	InFlight      int64
}

// MeanQueueDelay is the average queueing delay of sent packets.
func (s LinkStats) MeanQueueDelay() time.Duration {
	if s.Sent == 0 {
		return 0
	}
	return time.Duration(s.QueueDelay / int64(s.Sent))
}

// Stats is a snapshot of an emulator's counters.
type Stats struct {
	Links     []LinkStats // by link ID
	Received  uint64      // packets read from endpoints
	Delivered uint64      // packets written to endpoints
	NoRoute   uint64      // dropped: destination is no node (or the sender)
	NotIPv4   uint64      // dropped: not an IPv4 packet (IPv6, runts)
	ReadErrs  uint64
	WriteErrs uint64
	// Late counts packets handed out more than 100 us after the model's
	// arrival time (the scheduler was not running in time: a loaded
	// host); MeanLate and MaxLate summarise the lateness of all deliveries.
	// Timings measured while Late grows are suspect.
	Late     uint64
	MeanLate time.Duration
	MaxLate  time.Duration
	SumLate  time.Duration
	// Memory is the packet buffer memory held in all links when sampled,
	// of at most MaxInFlight; MemoryDrops the packets refused for it.
	Memory      int64
	MaxInFlight int64
	MemoryDrops uint64
}

// Stats returns a consistent snapshot of the per-link counters.
func (e *Emulator) Stats() Stats {
	s := Stats{
		Received: e.ctr.received.Load(), Delivered: e.ctr.delivered.Load(),
		NoRoute: e.ctr.noRoute.Load(), NotIPv4: e.ctr.notIPv4.Load(),
		ReadErrs: e.ctr.readErrs.Load(), WriteErrs: e.ctr.writeErrs.Load(),
		Late: e.ctr.late.Load(), MaxLate: time.Duration(e.ctr.lateMax.Load()),
	}
	s.SumLate = time.Duration(e.ctr.lateSum.Load())
	if n := e.ctr.lateN.Load(); n > 0 {
		s.MeanLate = s.SumLate / time.Duration(n)
	}
	now := float64(e.now())
	e.mu.Lock()
	defer e.mu.Unlock()
	s.Links = make([]LinkStats, len(e.pipes))
	for i, p := range e.pipes {
		s.Links[i] = p.st
		s.Links[i].Backlog = int64(p.m.backlog(now))
		s.Links[i].InFlight = p.fl.bytes
		s.MemoryDrops += p.st.MemoryDrops
	}
	s.Memory, s.MaxInFlight = e.memHeld, e.opts.MaxInFlight
	return s
}
