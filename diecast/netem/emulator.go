package netem

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmux/vmux/diecast/topology"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

// Options tune an Emulator; the zero value is usable.
type Options struct {
	// Seed makes loss and jitter reproducible (same seed, same packet
	// order: same drops). Each link draws from its own stream.
	Seed uint64
	// Logger receives endpoint errors; nil discards them.
	Logger *slog.Logger
	// SpinWindow: deadlines nearer than this are met by spinning (yielding)
	// instead of sleeping, because a sleep here overshoots by ~100-180 us.
	// Default 150us; negative disables spinning.
	SpinWindow time.Duration
	// Nice, when not 0, locks the scheduler to its own OS thread at this
	// nice value (e.g. -10; lowering it needs root). On a contended host it
	// keeps deadlines tighter (median added latency 56 -> 21 us measured),
	// but every reader -> scheduler handoff then crosses OS threads, which
	// cut capacity about 3x here (docs/benchmarks.md). Default 0: off.
	Nice int
	// Lead delivers packets this much before their modelled arrival on
	// the last link of their path (a link into a node), but never before
	// they left its transmitter: it cancels a fixed cost outside the model
	// (the TUN crossings, about half the RTT of a zero-latency path; see
	// docs/benchmarks.md). Default 0: no compensation.
	Lead time.Duration
	// MaxPacket is the largest packet read from an endpoint (default
	// 65535); set the TUN MTU at or below it.
	MaxPacket int
	// Clock, when set, runs the emulator in virtual time on that clock
	// (a dilated experiment's): links keep their Virtual parameters and
	// packets are scheduled on the clock's virtual monotonic time, so a
	// pause holds every packet in flight and a change of k reaches them
	// at once. Nil: real time, with each link's Real (TDF-scaled)
	// parameters.
	Clock *clock.View
	// MaxInFlight bounds the packet buffer memory all links together hold
	// (default DefaultMaxInFlight; negative: no bound). A packet read from
	// a node that would exceed it is dropped (LinkStats.MemoryDrops).
	MaxInFlight int64
	// UnlimitedInFlight bounds the bytes a link of unlimited bandwidth
	// carries at once, queue and propagation together (default
	// DefaultUnlimitedInFlight, or the link's queue if larger); a packet
	// that does not fit is dropped (LinkStats.InFlightDrops). Links with a
	// bandwidth hold at most queue + bandwidth x (latency + jitter).
	UnlimitedInFlight int64
}

// pipe is one directed link at run time: its model, its in-flight packets
// ordered by arrival, and its counters. Guarded by Emulator.mu.
type pipe struct {
	id    int
	m     model
	q     ring
	heapI int // index in the scheduler heap, -1 when q is empty
	st    LinkStats

	fl flight // what q holds, and the link's bound (inflight.go)
}

// Emulator forwards packets between node endpoints over a topology, through
// one pipe per directed link, in real time.
type Emulator struct {
	net   *topology.Network
	eps   []Endpoint // by node index
	opts  Options
	log   *slog.Logger
	base  time.Time
	nodes int

	addr  map[[4]byte]int32 // IPv4 address -> node index
	paths [][]*pipe         // src*nodes+dst -> pipes in order
	pdst  []int32           // path -> destination node

	// mu guards pipes (models, rings, stats), the heap and sleepUntil.
	mu         sync.Mutex
	pipes      []*pipe
	heap       []*pipe // min-heap on q.front().at
	sleepUntil int64
	memHeld    int64 // buffer memory of every packet in a pipe (inflight.go)

	// Scheduler-only state for delivery (deliver.go).
	batchers []batcher // by node: the endpoint if it writes in batches
	pend     [][]int32 // by node: batch indexes waiting for a batched write
	touched  []int32
	wbufs    [][]byte // write buffers with room to coalesce
	wout     [][]byte

	watch watches // flows whose first delivery someone waits for (watch.go)

	vt      *vtime // virtual mode (Options.Clock); nil: real time
	vtSeq   uint64 // the clock sequence the leads were set at (scheduler only)
	waker   *linux.Waker
	pending atomic.Bool  // a packet was queued earlier than sleepUntil
	state   atomic.Int32 // scheduler: 0 awake, 1 sleeping, 2 being woken
	closed  atomic.Bool
	done    chan struct{}

	runMu   sync.Mutex
	running bool
	exited  chan struct{}
	once    sync.Once

	ctr counters
}

// counters are the emulator-wide statistics, updated atomically.
type counters struct {
	received, delivered, noRoute, notIPv4, readErrs, writeErrs atomic.Uint64
	late, lateSum, lateN                                       atomic.Uint64
	lateMax                                                    atomic.Int64
}

// New builds an emulator for net. eps maps every node name to its
// endpoint; the emulator owns them from now on and closes them in Close.
// Link timing uses each link's Real (TDF-scaled) parameters.
func New(net *topology.Network, eps map[string]Endpoint, opts Options) (*Emulator, error) {
	if net == nil {
		return nil, fmt.Errorf("creating emulator: nil network: %w", ErrEndpoints)
	}
	if opts.SpinWindow == 0 {
		opts.SpinWindow = 150 * time.Microsecond
	}
	if opts.MaxPacket <= 0 {
		opts.MaxPacket = 65535
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.UnlimitedInFlight <= 0 {
		opts.UnlimitedInFlight = DefaultUnlimitedInFlight
	}
	e := &Emulator{net: net, opts: opts, log: opts.Logger, nodes: len(net.Nodes),
		addr: map[[4]byte]int32{}, done: make(chan struct{}), exited: make(chan struct{}), sleepUntil: maxTime}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.eps = make([]Endpoint, e.nodes)
	for name, ep := range eps {
		nd, ok := net.Node(name)
		if !ok {
			return nil, fmt.Errorf("creating emulator: endpoint for %q, which is not a node of %s: %w", name, net.Name, ErrEndpoints)
		}
		if ep == nil {
			return nil, fmt.Errorf("creating emulator: nil endpoint for node %q: %w", name, ErrEndpoints)
		}
		e.eps[nd.Index] = ep
	}
	e.batchers = make([]batcher, e.nodes)
	e.pend = make([][]int32, e.nodes)
	for i, ep := range e.eps {
		if b, ok := ep.(batcher); ok && b.batchSize() > 1 {
			e.batchers[i] = b
		}
	}
	for _, nd := range net.Nodes {
		if e.eps[nd.Index] == nil {
			return nil, fmt.Errorf("creating emulator: no endpoint for node %q: %w", nd.Name, ErrEndpoints)
		}
		e.addr[nd.Addr.As4()] = int32(nd.Index)
	}
	if opts.Clock != nil {
		vt, err := newVtime(opts.Clock)
		if err != nil {
			return nil, fmt.Errorf("creating emulator: %w", err)
		}
		e.vt = vt
	}
	for _, l := range net.Links {
		params := l.Real
		if e.vt != nil {
			params = l.Virtual
		}
		m := newModel(params, opts.Seed, l.ID)
		if _, toNode := net.Node(l.To); toNode && opts.Lead > 0 {
			m.lead = e.leadNow()
		}
		e.pipes = append(e.pipes, &pipe{id: l.ID, m: m, heapI: -1,
			fl: flight{limit: flightLimit(&m, opts.UnlimitedInFlight)},
			st: LinkStats{ID: l.ID, From: l.From, To: l.To}})
	}
	e.paths = make([][]*pipe, e.nodes*e.nodes)
	e.pdst = make([]int32, e.nodes*e.nodes)
	for s := 0; s < e.nodes; s++ {
		for d := 0; d < e.nodes; d++ {
			e.pdst[s*e.nodes+d] = int32(d)
			if s == d {
				continue
			}
			r, err := net.Route(s, d)
			if err != nil {
				return nil, fmt.Errorf("creating emulator: %w", err)
			}
			ps := make([]*pipe, len(r))
			for i, id := range r {
				ps[i] = e.pipes[id]
			}
			e.paths[s*e.nodes+d] = ps
		}
	}
	w, err := linux.NewWaker()
	if err != nil {
		return nil, fmt.Errorf("creating emulator: %w", err)
	}
	e.waker = w
	e.base = time.Now()
	return e, nil
}

// now is the emulator's clock: nanoseconds since New, monotonic; virtual
// ones in virtual mode.
func (e *Emulator) now() int64 {
	if e.vt != nil {
		return e.vt.now()
	}
	return int64(time.Since(e.base))
}

// leadNow is Options.Lead in the model's units: real ns, or the virtual
// time it is worth at the current factor.
func (e *Emulator) leadNow() float64 {
	if e.vt == nil {
		return float64(e.opts.Lead)
	}
	k, _ := e.vt.state()
	return float64(e.opts.Lead) / k
}

// followClock re-derives what depends on the factor (the leads) after a
// clock change. Called by the scheduler with e.mu held.
func (e *Emulator) followClock() {
	if e.vt == nil || e.opts.Lead <= 0 {
		return
	}
	seq := linux.SharedLoad64(e.vt.page, vclock.PageOffSeq)
	if seq == e.vtSeq {
		return
	}
	e.vtSeq = seq
	lead := e.leadNow()
	for _, p := range e.pipes {
		if p.m.lead > 0 {
			p.m.lead = lead
		}
	}
}

// ClockChanged wakes the scheduler after a change of the clock (virtual
// mode), so that sleeps computed at the old factor are recomputed now. It
// is safe to call at any time; without it the scheduler notices within
// maxVirtualSleep.
func (e *Emulator) ClockChanged() { e.kick() }

// Run forwards packets until Close. It returns nil after Close, or
// ErrClosed if Close came first.
func (e *Emulator) Run() error {
	e.runMu.Lock()
	if e.running {
		e.runMu.Unlock()
		return ErrRunning
	}
	if e.closed.Load() {
		e.runMu.Unlock()
		return ErrClosed
	}
	e.running = true
	e.runMu.Unlock()
	defer close(e.exited)

	var wg sync.WaitGroup
	for i := range e.eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.reader(i)
		}()
	}
	e.schedule()
	wg.Wait()
	e.drain()
	return nil
}

// Close stops the emulator, closes every endpoint and waits for Run to
// return. Packets still in flight are discarded. It is idempotent.
func (e *Emulator) Close() error {
	e.once.Do(func() {
		e.closed.Store(true)
		close(e.done)
		e.kick()
		for _, ep := range e.eps {
			if err := ep.Close(); err != nil {
				e.log.Warn("closing endpoint", "err", err)
			}
		}
		e.runMu.Lock()
		running := e.running
		e.runMu.Unlock()
		if running {
			<-e.exited
		}
		e.waker.Close()
	})
	return nil
}

// drain frees the buffers of packets still in flight.
func (e *Emulator) drain() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.pipes {
		for p.q.len() > 0 {
			pk := e.take(p)
			putBuf(pk.buf)
		}
		p.heapI = -1
	}
	e.heap = e.heap[:0]
}
