package netem

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/topology"
)

const twoNodes = `
name: t
tdf: 1
nodes: {a: {}, b: {}}
switches: [s1]
links:
  - {ends: [a, s1], bandwidth: 100Mbit, latency: 5ms}
  - {ends: [b, s1], bandwidth: 100Mbit, latency: 5ms}
`

func addr(t testing.TB, e *Emulator, name string) netip.Addr {
	t.Helper()
	n, ok := e.net.Node(name)
	if !ok {
		t.Fatalf("no node %s", name)
	}
	return n.Addr
}

// readTimeout reads one packet or fails after d.
func readTimeout(t testing.TB, f *Fake, d time.Duration) []byte {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	c := make(chan res, 1)
	go func() {
		b := make([]byte, 65536)
		n, err := f.Read(b)
		c <- res{b[:n], err}
	}()
	select {
	case r := <-c:
		if r.err != nil {
			t.Fatalf("read: %v", r.err)
		}
		return r.b
	case <-time.After(d):
		f.Close()
		t.Fatalf("no packet within %v", d)
	}
	return nil
}

// Packets one at a time see the path's latency plus serialization: never
// less, and (median) at most a little more.
func TestLatencyOneWay(t *testing.T) {
	n := compile(t, twoNodes)
	bestOf(t, 5, func() error {
		e, nodes := fakeNet(t, n, Options{})
		a, b := addr(t, e, "a"), addr(t, e, "b")
		want := 10*time.Millisecond + 160*time.Microsecond // 2 x (5 ms + 1000 B at 100 Mbit/s)
		var got []time.Duration
		for i := 0; i < 30; i++ {
			start := time.Now()
			nodes["a"].Write(ipv4(a, b, 1000, uint64(i)))
			p := readTimeout(t, nodes["b"], time.Second)
			el := time.Since(start)
			if seqOf(p) != uint64(i) {
				t.Fatalf("got seq %d want %d", seqOf(p), i)
			}
			if el < want {
				t.Fatalf("packet %d took %v, less than the configured %v", i, el, want)
			}
			got = append(got, el)
		}
		sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
		t.Logf("one-way: min %v median %v max %v (model %v)", got[0], got[15], got[29], want)
		if got[15] > want+time.Millisecond {
			return fmt.Errorf("median one-way %v, want %v + at most 1ms", got[15], want)
		}
		return nil
	})
}

// A burst through a 10 Mbit/s path arrives at 10 Mbit/s.
func TestBandwidth(t *testing.T) {
	n := compile(t, `
name: bw
nodes: {a: {}, b: {}}
switches: [s]
links:
  - {ends: [a, s], bandwidth: 10Mbit, queue: 1MiB}
  - {ends: [s, b], bandwidth: 10Mbit, queue: 1MiB}
`)
	bestOf(t, 5, func() error {
		e, nodes := fakeNet(t, n, Options{})
		a, b := addr(t, e, "a"), addr(t, e, "b")
		const cnt, size = 300, 1250 // 1 ms each at 10 Mbit/s
		for i := 0; i < cnt; i++ {
			nodes["a"].Write(ipv4(a, b, size, uint64(i)))
		}
		var first, last time.Time
		for i := 0; i < cnt; i++ {
			p := readTimeout(t, nodes["b"], 2*time.Second)
			if seqOf(p) != uint64(i) {
				t.Fatalf("out of order: got %d want %d", seqOf(p), i)
			}
			if i == 0 {
				first = time.Now()
			}
			last = time.Now()
		}
		rate := float64((cnt-1)*size*8) / last.Sub(first).Seconds()
		t.Logf("carried %.3f Mbit/s", rate/1e6)
		if rate < 9.7e6 || rate > 10.3e6 {
			return fmt.Errorf("carried %.3f Mbit/s, want 10 within 3%%", rate/1e6)
		}
		return nil
	})
}

// Random loss drops about the configured fraction, counted per link.
func TestLoss(t *testing.T) {
	n := compile(t, `
name: loss
nodes: {a: {}, b: {}}
links: [{ends: [a, b], loss: 10%, forward: {loss: 10%}, reverse: {loss: 0%}}]
`)
	e, nodes := fakeNet(t, n, Options{Seed: 42})
	a, b := addr(t, e, "a"), addr(t, e, "b")
	const cnt = 3000
	for i := 0; i < cnt; i++ {
		nodes["a"].Write(ipv4(a, b, 200, uint64(i)))
		if i%500 == 499 {
			time.Sleep(5 * time.Millisecond) // stay within the fake's depth
		}
	}
	// Wait until every packet was offered and every one that passed the
	// link was handed to b, then count what b holds.
	deadline := time.Now().Add(5 * time.Second)
	var st Stats
	for time.Now().Before(deadline) {
		st = e.Stats()
		if st.Links[0].Packets == cnt && st.Delivered == st.Links[0].Sent {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := len(nodes["b"].in)
	l := st.Links[0]
	lost := cnt - got
	t.Logf("lost %d of %d; link stats %+v", lost, cnt, l)
	if lost < 300-82 || lost > 300+82 { // 5 sd of Binomial(3000, 0.1)
		t.Fatalf("lost %d of %d, want 300 +- 82", lost, cnt)
	}
	if l.LossDrops != uint64(lost) || l.Sent != uint64(got) || l.Packets != cnt || l.QueueDrops != 0 {
		t.Fatalf("link stats %+v do not match %d received, %d lost", l, got, lost)
	}
}

// A burst larger than the queue fills it; the rest is dropped and counted.
func TestQueueOverflow(t *testing.T) {
	n := compile(t, `
name: q
nodes: {a: {}, b: {}}
links: [{ends: [a, b], bandwidth: 1Mbit, queue: 15000}]
`)
	bestOf(t, 5, func() error {
		e, nodes := fakeNet(t, n, Options{})
		a, b := addr(t, e, "a"), addr(t, e, "b")
		for i := 0; i < 50; i++ {
			nodes["a"].Write(ipv4(a, b, 1500, uint64(i)))
		}
		time.Sleep(50 * time.Millisecond) // the reader takes the burst in; 12 ms per packet drain
		st := e.Stats().Links[0]
		t.Logf("%+v", st)
		// 10 fit at once; the link drains 1500 B in 12 ms, so at most one more
		// fits while the burst is read (well under 12 ms).
		if st.Packets != 50 || st.QueueDrops < 39 || st.QueueDrops > 40 {
			return fmt.Errorf("queue drops %d of %d, want 39-40", st.QueueDrops, st.Packets)
		}
		if st.MaxQueueDelay < int64(100*time.Millisecond) {
			return fmt.Errorf("max queue delay %v, want about 9 x 12 ms", time.Duration(st.MaxQueueDelay))
		}
		return nil
	})
}

// TDF scales every hop of a multi-hop path: at k = 2, 3 hops of
// 1 + 2 + 1 ms take 8 ms.
func TestMultiHopTDF(t *testing.T) {
	n := compile(t, `
name: mh
tdf: 2
nodes: {a: {}, b: {}, c: {}}
switches: [s1, s2]
links:
  - {ends: [a, s1], latency: 1ms}
  - {ends: [s1, s2], latency: 2ms}
  - {ends: [s2, b], latency: 1ms}
  - {ends: [c, s1], latency: 1ms}
`)
	bestOf(t, 5, func() error {
		e, nodes := fakeNet(t, n, Options{})
		a, b, c := addr(t, e, "a"), addr(t, e, "b"), addr(t, e, "c")
		var prevLate time.Duration
		for _, hop := range []struct {
			from, to string
			src, dst netip.Addr
		}{{"a", "b", a, b}, {"b", "c", b, c}} {
			start := time.Now()
			nodes[hop.from].Write(ipv4(hop.src, hop.dst, 100, 1))
			readTimeout(t, nodes[hop.to], time.Second)
			el := time.Since(start)
			if el < 8*time.Millisecond {
				t.Fatalf("%s->%s took %v, less than the configured 8 ms", hop.from, hop.to, el)
			}
			// The emulator measures how late its scheduler ran (host
			// load); that part of the excess is not the model's. What
			// remains must be within 1 ms of the model's 8 ms.
			total := e.Stats().SumLate
			late := total - prevLate
			prevLate = total
			if late <= 0 || late > el-8*time.Millisecond {
				t.Fatalf("%s->%s: scheduler lateness %v exceeds the %v seen beyond 8 ms", hop.from, hop.to, late, el-8*time.Millisecond)
			}
			if el-late > 9*time.Millisecond {
				return fmt.Errorf("%s->%s took %v (%v of it scheduler lateness), want 8 ms (+1)", hop.from, hop.to, el, late)
			}
		}
		return nil
	})
}

// Packets to unknown addresses, to the sender itself, and non-IPv4 are
// dropped and counted, not forwarded.
func TestUnroutable(t *testing.T) {
	n := compile(t, twoNodes)
	e, nodes := fakeNet(t, n, Options{})
	a := addr(t, e, "a")
	nodes["a"].Write(ipv4(a, netip.MustParseAddr("1.2.3.4"), 100, 0))
	nodes["a"].Write(ipv4(a, a, 100, 0))
	v6 := make([]byte, 60)
	v6[0] = 0x60
	nodes["a"].Write(v6)
	nodes["a"].Write([]byte{0x45, 0})
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		st := e.Stats()
		if st.Received == 4 {
			if st.NoRoute != 2 || st.NotIPv4 != 2 || st.Delivered != 0 {
				t.Fatalf("stats %+v", st)
			}
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("emulator did not read 4 packets: %+v", e.Stats())
}

func TestNewErrors(t *testing.T) {
	n := compile(t, twoNodes)
	a, _ := NewFakePair(1)
	if _, err := New(n, map[string]Endpoint{"a": a}, Options{}); !errors.Is(err, ErrEndpoints) {
		t.Fatalf("missing endpoint: %v", err)
	}
	if _, err := New(n, map[string]Endpoint{"a": a, "b": a, "zz": a}, Options{}); !errors.Is(err, ErrEndpoints) {
		t.Fatalf("extra endpoint: %v", err)
	}
	if _, err := New(nil, nil, Options{}); !errors.Is(err, ErrEndpoints) {
		t.Fatalf("nil network: %v", err)
	}
	b, _ := NewFakePair(1)
	e, err := New(n, map[string]Endpoint{"a": a, "b": b}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	e.Close()
	if err := e.Run(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
}

// Close stops every goroutine the emulator started, even with packets in
// flight and readers blocked.
func TestCloseLeavesNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	n := compile(t, twoNodes)
	for round := 0; round < 3; round++ {
		eps := map[string]Endpoint{}
		var node *Fake
		for _, nd := range n.Nodes {
			x, y := NewFakePair(64)
			eps[nd.Name] = x
			node = y
		}
		e, err := New(n, eps, Options{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- e.Run() }()
		a, b := addr(t, e, "a"), addr(t, e, "b")
		for i := 0; i < 20; i++ {
			node.Write(ipv4(b, a, 1000, 0)) // in flight for 10 ms
		}
		time.Sleep(time.Millisecond)
		e.Close()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, ErrClosed) {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not return after Close")
		}
		if e.Stats().Links[0].Packets == 0 && e.Stats().Received == 0 {
			t.Log("no packet read before Close (fine)")
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left (before %d):\n%s", g, before, buf[:runtime.Stack(buf, true)])
	}
}

// errEndpoint fails every Read until closed.
type errEndpoint struct {
	reads  atomic.Int64
	closed chan struct{}
}

func (f *errEndpoint) Read(p []byte) (int, error) {
	select {
	case <-f.closed:
		return 0, os.ErrClosed
	default:
	}
	f.reads.Add(1)
	return 0, syscall.EIO
}
func (f *errEndpoint) Write(p []byte) (int, error) { return len(p), nil }
func (f *errEndpoint) Close() error                { close(f.closed); return nil }

// An endpoint that keeps failing is retried with backoff, not in a busy
// loop, and Close still stops its reader.
func TestReadErrorBackoff(t *testing.T) {
	n := compile(t, twoNodes)
	bad := &errEndpoint{closed: make(chan struct{})}
	good, _ := NewFakePair(4)
	e, err := New(n, map[string]Endpoint{"a": bad, "b": good}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- e.Run() }()
	time.Sleep(300 * time.Millisecond)
	e.Close()
	<-done
	// 1+2+4+...+100 ms: about 10 reads in 300 ms, never thousands.
	if r := bad.reads.Load(); r < 3 || r > 20 {
		t.Fatalf("%d reads of a failing endpoint in 300 ms", r)
	}
	if e.Stats().ReadErrs != uint64(bad.reads.Load()) {
		t.Fatalf("ReadErrs %d, reads %d", e.Stats().ReadErrs, bad.reads.Load())
	}
}

// An idle emulator sleeps: no busy loop while no packet is in flight.
func TestIdleUsesNoCPU(t *testing.T) {
	n := compile(t, twoNodes)
	e, nodes := fakeNet(t, n, Options{})
	a, b := addr(t, e, "a"), addr(t, e, "b")
	nodes["a"].Write(ipv4(a, b, 100, 1)) // one packet through, then idle
	readTimeout(t, nodes["b"], time.Second)
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(300 * time.Millisecond)
	if used, wall := cpuTime()-c0, time.Since(t0); used > wall/20 {
		t.Fatalf("idle emulator used %v CPU in %v", used, wall)
	}
}

// SetLink cuts a link (loss 100%) and restores it at run time; at TDF 2
// the new latency is applied doubled.
func TestSetLink(t *testing.T) {
	n := compile(t, "name: sl\ntdf: 2\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b], latency: 1ms}]\n")
	e, nodes := fakeNet(t, n, Options{})
	a, b := addr(t, e, "a"), addr(t, e, "b")
	fwd, _ := n.RouteByName("a", "b")
	if err := e.SetLink(fwd[0], topology.LinkParams{Loss: 1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		nodes["a"].Write(ipv4(a, b, 100, uint64(i)))
	}
	deadline := time.Now().Add(2 * time.Second)
	for e.Stats().Links[fwd[0]].LossDrops < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := e.Stats().Links[fwd[0]]; st.LossDrops != 20 || len(nodes["b"].in) != 0 {
		t.Fatalf("cut link passed packets: %+v", st)
	}
	if err := e.SetLink(fwd[0], topology.LinkParams{Latency: topology.Duration(3 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	nodes["a"].Write(ipv4(a, b, 100, 99))
	if p := readTimeout(t, nodes["b"], time.Second); seqOf(p) != 99 {
		t.Fatalf("got seq %d", seqOf(p))
	}
	if el := time.Since(start); el < 6*time.Millisecond {
		t.Fatalf("restored link took %v, want >= 6 ms (3 ms x TDF 2)", el)
	}
	if err := e.SetLink(99, topology.LinkParams{}); err == nil {
		t.Fatal("SetLink(99) accepted")
	}
	if err := e.SetLink(0, topology.LinkParams{Loss: 2}); err == nil {
		t.Fatal("loss 200% accepted")
	}
}
