package netem

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/topology"
)

// A link of long latency and unlimited bandwidth kept every packet a node
// sent for the whole latency: a blast grew the daemon by 2.2 GB in 6 s.
// Now what the emulator holds is bounded, and the refused packets counted.
func TestDelayLineMemoryBounded(t *testing.T) {
	const maxMem = 4 << 20
	n := compile(t, "name: t\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b], latency: 10s}]\n")
	e, nodes := fakeNet(t, n, Options{MaxInFlight: maxMem})
	pkt := ipv4(addr(t, e, "a"), addr(t, e, "b"), 1400, 0)
	const sent = 20000 // 27 MB of packets, 39 MB of buffers if all were kept
	s := feed(t, e, nodes["a"], pkt, sent)
	held := 0
	e.mu.Lock()
	for _, p := range e.pipes {
		held += p.q.len()
	}
	e.mu.Unlock()
	if held*smallBuf > maxMem {
		t.Errorf("the delay line holds %d packets (%d MB of buffers), want at most %d MB", held, held*smallBuf>>20, maxMem>>20)
	}
	l := linkFrom(t, s, "a")
	if l.MemoryDrops == 0 || l.MemoryDrops != s.MemoryDrops || l.Packets != l.Sent+l.QueueDrops+l.LossDrops+l.InFlightDrops+l.MemoryDrops {
		t.Errorf("counters: %+v (total memory drops %d)", l, s.MemoryDrops)
	}
	if s.Memory > maxMem || s.Memory != int64(held*smallBuf) || s.MaxInFlight != maxMem {
		t.Errorf("Stats.Memory %d, MaxInFlight %d; held %d packets", s.Memory, s.MaxInFlight, held)
	}
	if l.InFlight != int64(held*1400) {
		t.Errorf("LinkStats.InFlight %d, want %d", l.InFlight, held*1400)
	}
}

// A link of unlimited bandwidth carries at most UnlimitedInFlight bytes
// (queue and propagation together); what does not fit is dropped like a
// full queue, and the memory comes back as packets arrive.
func TestUnlimitedLinkInFlightBound(t *testing.T) {
	const bound = 1 << 20
	n := compile(t, "name: t\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b], latency: 300ms}]\n")
	e, nodes := fakeNet(t, n, Options{UnlimitedInFlight: bound})
	pkt := ipv4(addr(t, e, "a"), addr(t, e, "b"), 1000, 0)
	const sent = 3000 // 3 MB
	s := feed(t, e, nodes["a"], pkt, sent)
	l := linkFrom(t, s, "a")
	if l.InFlight > bound || l.Sent != bound/1000 || l.InFlightDrops != sent-l.Sent || l.MemoryDrops != 0 {
		t.Errorf("link after %d packets of 1000 B: %+v, want %d sent, in flight <= %d", sent, l, bound/1000, bound)
	}
	for i := uint64(0); i < l.Sent; i++ {
		readTimeout(t, nodes["b"], 2*time.Second)
	}
	if s := e.Stats(); s.Memory != 0 || linkFrom(t, s, "a").InFlight != 0 {
		t.Errorf("after delivery: memory %d, in flight %d, want 0", s.Memory, linkFrom(t, s, "a").InFlight)
	}
}

// On a link with a bandwidth the bound is the link's physical capacity,
// queue + bandwidth x (latency + jitter): the model never reaches it, so
// the bound changes nothing there. Checked in virtual time on random
// traffic against the model alone.
func TestFlightLimitNeverBindsFiniteLinks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []topology.LinkParams{
		params(10e6, 50*time.Millisecond, 64<<10),
		params(1e9, 5*time.Millisecond, 1500),
		{Bandwidth: 100e6, Latency: topology.Duration(20 * time.Millisecond), Jitter: topology.Duration(5 * time.Millisecond), Queue: 1 << 20, Reorder: true},
	} {
		m := newModel(p, 1, 0)
		limit := flightLimit(&m, DefaultUnlimitedInFlight)
		type fl struct {
			arrive float64
			n      int64
		}
		var inFlight []fl
		var bytes, peak int64
		now := 0.0
		for i := 0; i < 30000; i++ {
			now += rng.ExpFloat64() * 8e9 / float64(p.Bandwidth) * 500 // offered ~ 1.5x the rate (mean 782 B)
			size := 64 + rng.IntN(1437)
			k := 0
			for _, f := range inFlight {
				if f.arrive > now {
					inFlight[k] = f
					k++
				} else {
					bytes -= f.n
				}
			}
			inFlight = inFlight[:k]
			arrive, _, v := m.offer(now, size)
			if v != pass {
				continue
			}
			inFlight = append(inFlight, fl{arrive, int64(size)})
			bytes += int64(size)
			peak = max(peak, bytes)
			if bytes > limit {
				t.Fatalf("%+v: %d bytes in flight, over the limit %d", p, bytes, limit)
			}
		}
		// Not vacuous: the link was full.
		if peak < (limit-flightSlack)*3/4 {
			t.Errorf("%+v: peak %d bytes in flight, want near the limit %d", p, peak, limit)
		}
	}
}

// feed writes n copies of pkt into the emulator through node endpoint f,
// in bursts the fake endpoint can hold (it drops beyond its depth), and
// returns the statistics once the emulator has taken them all in.
func feed(t *testing.T, e *Emulator, f *Fake, pkt []byte, n int) Stats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for sent := 0; ; {
		s := e.Stats()
		if s.Received >= uint64(n) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("emulator received %d of %d packets", s.Received, n)
		}
		if s.Received == uint64(sent) {
			for k := 0; k < 1000 && sent < n; k++ {
				f.Write(pkt)
				sent++
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// linkFrom is the statistics of the link leaving node from.
func linkFrom(t *testing.T, s Stats, from string) LinkStats {
	t.Helper()
	for _, l := range s.Links {
		if l.From == from {
			return l
		}
	}
	t.Fatalf("no link from %s", from)
	return LinkStats{}
}
