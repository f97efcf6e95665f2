package netd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmux/vmux/diecast/netem"
	"github.com/vmux/vmux/diecast/tcpfreeze"
	"github.com/vmux/vmux/diecast/topology"
	"github.com/vmux/vmux/rt/vclock"
)

// tcpPause keeps the nodes' kernel TCP from retransmitting across a pause
// of a dilated experiment's clock (docs/design/network.md, "Pausing an
// experiment: TCP"). The nodes' TCP timers run in real time, so a sender
// with data in flight would time out while the emulator holds its
// packets. Before the pause is published (clock.ServeOptions.BeforeChange)
// every node socket with data in flight through the emulator is frozen
// (diecast/tcpfreeze: its lock held, its timers deferred); while paused,
// sockets that started sending since are frozen too (a scan every
// scanEvery); after the resume is published each socket is released once
// the emulator has delivered a packet of its connection to it (that
// packet, normally the ACK held in flight, then re-arms its timers before
// the deferred one runs), or after its path's worst round trip if none
// comes.
type tcpPause struct {
	d   *daemon
	log *slog.Logger
	// off is why pauses do not freeze TCP (nil: they do).
	off error

	// mu guards closed and round, and the phase of the round. The clock
	// server calls before and after for one change at a time; mu orders
	// them with close. Holding it, one may wait for a round's phase
	// goroutine to end (halt): those never take it.
	mu     sync.Mutex
	closed bool
	round  *freezeRound // the sockets of the pause in force, or being released

	rttMu sync.Mutex // guards rtts
	rtts  map[[2]int]time.Duration
}

// freezeRound is one pause's frozen sockets (a pause that comes while the
// previous one's are still being released takes them over).
type freezeRound struct {
	f *tcpfreeze.Frozen

	mu   sync.Mutex              // guards seen, dst and fws
	seen map[int]<-chan struct{} // socket id -> its flow's first delivery
	dst  map[int][2]int          // socket id -> (its node, the peer's node)
	fws  []*netem.FlowWatch

	// The phase goroutine (the scanner while paused, the releaser after),
	// guarded by tcpPause.mu.
	stop, done chan struct{}
	scanning   bool
	// freed: the releaser released every socket and freed f.
	freed atomic.Bool
}

// halt stops r's phase goroutine and waits for it (tcpPause.mu held).
func (r *freezeRound) halt() {
	if r.stop == nil {
		return
	}
	close(r.stop)
	<-r.done
	r.stop, r.done = nil, nil
}

// errFreezeDisabled is why pauses do not freeze TCP when
// UpOptions.NoTCPFreeze asked so.
var errFreezeDisabled = errors.New("disabled at bring-up")

// Limits of the freeze.
const (
	freezeMax = 256 // sockets held per pause (each an OS thread asleep in the kernel)
	scanEvery = 50 * time.Millisecond
	// ackSlack is added to a path's round trip before a socket whose
	// connection delivered nothing is released anyway: the peer's delayed
	// ACK, which its kernel times in real time (at most 200 ms), and some
	// scheduling.
	ackSlack      = 250 * time.Millisecond
	maxAckTimeout = 10 * time.Second
)

// newTCPPause probes the kernel; a kernel without the mechanism gets
// pauses without the freeze, logged and shown by vmux net status, as does
// an experiment brought up with UpOptions.NoTCPFreeze (off).
func newTCPPause(d *daemon, off bool) *tcpPause {
	t := &tcpPause{d: d, log: d.log, rtts: map[[2]int]time.Duration{}}
	if off {
		t.off = errFreezeDisabled
		d.log.Info("tcp freeze off (asked): pauses will let the nodes' TCP time out and retransmit")
		return t
	}
	if err := tcpfreeze.Probe(); err != nil {
		t.off = err
		d.log.Warn("tcp freeze off: pauses will let the nodes' TCP time out and retransmit", "err", err)
	}
	return t
}

// state is what vmux net status shows.
func (t *tcpPause) state() string {
	if t.off != nil {
		return "off (" + t.off.Error() + ")"
	}
	return "on"
}

// targets are the nodes as tcpfreeze sees them: netns and processes.
func (t *tcpPause) targets() []tcpfreeze.Target {
	var out []tcpfreeze.Target
	for _, n := range t.d.nodes {
		if n == nil {
			continue
		}
		pids := []int{n.Pid()}
		if paths := n.Cgroup().Paths(); len(paths) > 0 {
			pids = append(pids, cgroupProcs(paths[0])...)
		}
		out = append(out, tcpfreeze.Target{Name: n.Name(), Netns: n.NetnsPath(), Pids: pids})
	}
	return out
}

// maxProcsBytes bounds a cgroup.procs read.
const maxProcsBytes = 1 << 20

// cgroupProcs lists the processes of a cgroup directory.
func cgroupProcs(dir string) []int {
	f, err := os.Open(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []int
	sc := bufio.NewScanner(io.LimitReader(f, maxProcsBytes))
	for sc.Scan() {
		if pid, err := strconv.Atoi(sc.Text()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	return out
}

// before runs before the clock server changes the clock: a pause of a
// running clock freezes first (lock the sockets, then stop delivery: a
// socket locked after its packets stopped could time out in between).
func (t *tcpPause) before(op string, cur vclock.Params) {
	if op != "pause" || cur.Paused || t.off != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	start := time.Now()
	r := t.round
	if r != nil {
		// The previous pause's sockets may still be being released: stop
		// the releaser; those still held wait for this resume.
		r.halt()
		if r.freed.Load() {
			r = nil
		}
	}
	if r != nil {
		if _, err := r.f.Add(t.targets()); err != nil {
			t.log.Warn("tcp freeze", "err", err)
		}
	} else {
		f, err := tcpfreeze.Freeze(t.targets(), tcpfreeze.Options{Max: freezeMax, Logger: t.log})
		if err != nil && f == nil {
			t.round = nil
			t.log.Warn("tcp freeze failed; pausing without it", "err", err)
			return
		}
		if err != nil {
			t.log.Warn("tcp freeze", "err", err)
		}
		r = &freezeRound{f: f, seen: map[int]<-chan struct{}{}, dst: map[int][2]int{}}
	}
	t.round = r
	t.watch(r)
	st := r.f.Stats()
	took := time.Since(start)
	t.log.Info("tcp frozen for the pause", "held", st.Held, "pending", st.Pending, "skipped", st.Skipped,
		"unreachable", st.Unreachable, "failed", st.Failed, "took", took)
	t.d.st.LastFreeze = &FreezeReport{Held: st.Held + st.Pending, Skipped: st.Skipped, Unreachable: st.Unreachable,
		Failed: st.Failed, Took: took}
}

// watch starts watching the connections of r's sockets not watched yet:
// the direction into the frozen socket.
func (t *tcpPause) watch(r *freezeRound) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []int
	var flows []netem.Flow
	for id, s := range r.f.Sockets() {
		if _, ok := r.seen[id]; ok {
			continue
		}
		ids = append(ids, id)
		flows = append(flows, netem.Flow{Src: s.Remote, Dst: s.Local})
		r.dst[id] = [2]int{t.nodeIndex(s.Local), t.nodeIndex(s.Remote)}
	}
	if len(flows) == 0 {
		return
	}
	fw := t.d.emu.WatchFlows(flows)
	r.fws = append(r.fws, fw)
	for i, id := range ids {
		r.seen[id] = fw.Seen(i)
	}
}

// nodeIndex is the node with address a, or -1.
func (t *tcpPause) nodeIndex(a netip.AddrPort) int {
	if nd, ok := t.d.net.NodeByAddr(a.Addr().Unmap()); ok {
		return nd.Index
	}
	return -1
}

// after runs after every change the clock server made: a pause starts
// the scanner, a resume the releaser.
func (t *tcpPause) after(p vclock.Params) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.round
	if r == nil || t.closed || r.freed.Load() {
		return
	}
	if p.Paused && r.scanning && r.stop != nil {
		return // a "set" while paused
	}
	r.halt()
	r.stop, r.done, r.scanning = make(chan struct{}), make(chan struct{}), p.Paused
	if p.Paused {
		go t.scan(r, r.stop, r.done)
		return
	}
	go t.release(r, p.TDF, r.stop, r.done)
}

// scan freezes, every scanEvery while paused, the sockets that started
// sending since the pause (a node's processes run on while its clock is
// stopped). A table read costs about a millisecond per node (it walks the
// host's whole TCP hash), so only nodes that sent a packet into the
// emulator since the last look are scanned: a socket that starts sending
// does so at once.
func (t *tcpPause) scan(r *freezeRound, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tk := time.NewTicker(scanEvery)
	defer tk.Stop()
	last := t.sent()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
		}
		now := t.sent()
		var changed []tcpfreeze.Target
		for _, tg := range t.targets() {
			if now[tg.Name] != last[tg.Name] {
				changed = append(changed, tg)
			}
		}
		last = now
		if len(changed) == 0 {
			continue
		}
		st, err := r.f.Add(changed)
		if err != nil {
			t.log.Debug("tcp freeze scan", "err", err)
		}
		if st.Held+st.Pending > 0 {
			t.watch(r)
			t.log.Info("tcp froze sockets that started sending during the pause", "held", st.Held+st.Pending, "skipped", st.Skipped)
		}
	}
}

// sent counts the packets each node has offered to the emulator.
func (t *tcpPause) sent() map[string]uint64 {
	out := map[string]uint64{}
	for _, l := range t.d.emu.Stats().Links {
		if _, ok := t.d.net.Node(l.From); ok {
			out[l.From] += l.Packets
		}
	}
	return out
}

// release releases each socket of r once its connection delivered a
// packet to it, or after its path's worst round trip at k, then frees r.
func (t *tcpPause) release(r *freezeRound, k vclock.TDF, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	byAck, byTimeout := 0, 0
	var last time.Duration
	for id := range r.f.Sockets() {
		r.mu.Lock()
		seen, nodes := r.seen[id], r.dst[id]
		r.mu.Unlock()
		wait := t.ackTimeout(nodes, k)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tm := time.NewTimer(wait)
			defer tm.Stop()
			acked := false
			select {
			case <-stop:
				return // paused again: held on
			case <-seen:
				acked = true
			case <-tm.C:
			}
			if err := r.f.ReleaseSocket(id); err != nil {
				t.log.Warn("tcp freeze: release", "err", err)
			}
			mu.Lock()
			if acked {
				byAck++
			} else {
				byTimeout++
			}
			last = max(last, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	select {
	case <-stop:
		// Paused again: the next resume's releaser takes over the sockets
		// still held (the pause held again those released here that had
		// data in flight).
		if byAck+byTimeout > 0 {
			t.log.Info("tcp released after the resume", "by_delivery", byAck, "by_timeout", byTimeout, "last_after", last, "paused_again", true)
		}
		return
	default:
	}
	r.free()
	t.log.Info("tcp released after the resume", "by_delivery", byAck, "by_timeout", byTimeout, "last_after", last)
}

// free stops r's watches and releases what is left.
func (r *freezeRound) free() {
	r.mu.Lock()
	for _, fw := range r.fws {
		fw.Stop()
	}
	r.fws = nil
	r.mu.Unlock()
	r.f.Release()
	r.freed.Store(true)
}

// close releases whatever is frozen (teardown: before the nodes stop, a
// process waiting for a held socket's lock cannot even be killed).
func (t *tcpPause) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if r := t.round; r != nil {
		r.halt()
		r.free()
		t.round = nil
	}
}

// ackTimeout is how long after the resume a frozen socket of node
// nodes[0] talking to node nodes[1] waits for a packet of its connection:
// the path's worst round trip (latency, jitter and a full queue each way)
// in real time at k, plus ackSlack, at most maxAckTimeout.
func (t *tcpPause) ackTimeout(nodes [2]int, k vclock.TDF) time.Duration {
	t.rttMu.Lock()
	rtt, ok := t.rtts[nodes]
	if !ok {
		rtt = worstRTT(t.d.net, nodes[0], nodes[1])
		t.rtts[nodes] = rtt
	}
	t.rttMu.Unlock()
	return min(time.Duration(float64(rtt)*k.Float64())+ackSlack, maxAckTimeout)
}

// worstRTT bounds the virtual round trip between nodes a and b; unknown
// nodes get the worst over every pair of the network.
func worstRTT(nw *topology.Network, a, b int) time.Duration {
	if a < 0 || b < 0 {
		var w time.Duration
		for i := range nw.Nodes {
			for j := range nw.Nodes {
				if i != j {
					w = max(w, worstRTT(nw, i, j))
				}
			}
		}
		return w
	}
	var d time.Duration
	for _, r := range [][2]int{{a, b}, {b, a}} {
		route, err := nw.Route(r[0], r[1])
		if err != nil {
			continue
		}
		for _, id := range route {
			lp := nw.Links[id].Virtual
			d += time.Duration(lp.Latency) + time.Duration(lp.Jitter)
			if lp.Bandwidth > 0 && lp.Queue > 0 {
				d += time.Duration(float64(lp.Queue) * 8 / float64(lp.Bandwidth) * float64(time.Second))
			}
		}
	}
	return d
}

// FreezeReport is what the last pause froze.
type FreezeReport struct {
	Held        int           `json:"held"`
	Skipped     int           `json:"skipped,omitempty"`
	Unreachable int           `json:"unreachable,omitempty"`
	Failed      int           `json:"failed,omitempty"`
	Took        time.Duration `json:"took_ns"`
}

func (r *FreezeReport) String() string {
	return fmt.Sprintf("%d sockets held, %d skipped, %d unreachable, %d failed, in %v", r.Held, r.Skipped, r.Unreachable, r.Failed, r.Took.Round(time.Microsecond))
}
