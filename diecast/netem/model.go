package netem

import (
	"math"
	"math/rand/v2"

	"github.com/vmux/vmux/diecast/topology"
)

// verdict is what a link does with an offered packet.
type verdict uint8

const (
	pass      verdict = iota
	dropQueue         // the drop-tail queue was full
	dropLoss          // random loss after transmission
)

// model is the pure, virtual-time model of one directed link (a ModelNet
// pipe): a FIFO transmitter at the link bandwidth fed by a drop-tail byte
// queue, then propagation delay plus jitter, then random loss. Times are
// nanoseconds on any monotonic axis. Because the transmitter is FIFO, the
// backlog at time t is the work left before it is idle: (busyUntil - t)
// x bandwidth, so no per-packet queue bookkeeping is needed.
type model struct {
	nsPerByte float64 // 0: unlimited bandwidth
	delay     float64 // ns
	jitter    float64 // ns, uniform in [-jitter, +jitter]
	loss      float64
	queue     float64 // bytes
	reorder   bool
	lead      float64 // ns delivered early on links into a node (Options.Lead)
	rng       *rand.Rand

	busyUntil  float64 // when the transmitter finishes its last packet
	lastArrive float64 // latest arrival handed out (FIFO unless reorder)
	lastOffer  float64 // latest offer time: offers are taken in time order
}

// newModel builds the model of real (already TDF-scaled) parameters.
func newModel(p topology.LinkParams, seed uint64, id int) model {
	m := model{
		delay:   float64(p.Latency),
		jitter:  float64(p.Jitter),
		loss:    float64(p.Loss),
		queue:   float64(p.Queue),
		reorder: p.Reorder,
		rng:     rand.New(rand.NewPCG(seed, uint64(id)*0x9e3779b97f4a7c15+1)),
	}
	if p.Bandwidth > 0 {
		m.nsPerByte = 8e9 / float64(p.Bandwidth)
	}
	if m.queue <= 0 {
		m.queue = math.Inf(1)
	}
	return m
}

// backlog is the number of bytes queued or in transmission at time now.
func (m *model) backlog(now float64) float64 {
	if m.nsPerByte == 0 || m.busyUntil <= now {
		return 0
	}
	return (m.busyUntil - now) / m.nsPerByte
}

// offer passes a packet of size bytes that reaches the link at now. It
// returns when the packet arrives at the far end, how long it waited in
// the queue, and the verdict. A lost packet still uses the bandwidth.
func (m *model) offer(now float64, size int) (arrive, wait float64, v verdict) {
	// The backlog at an earlier time than the last offer would count the
	// time in between as queued bytes: never look back.
	now = math.Max(now, m.lastOffer)
	m.lastOffer = now
	sz := float64(size)
	if m.backlog(now)+sz > m.queue {
		return 0, 0, dropQueue
	}
	start := math.Max(now, m.busyUntil)
	depart := start + sz*m.nsPerByte
	if m.nsPerByte > 0 {
		m.busyUntil = depart
	}
	if m.loss > 0 && m.rng.Float64() < m.loss {
		return 0, start - now, dropLoss
	}
	arrive = depart + m.delay
	if m.jitter > 0 {
		arrive += (2*m.rng.Float64() - 1) * m.jitter
	}
	arrive = math.Max(arrive-m.lead, depart)
	if !m.reorder {
		arrive = math.Max(arrive, m.lastArrive)
		m.lastArrive = arrive
	}
	return arrive, start - now, pass
}
