package netem

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/vmux/vmux/rt/vclock"
)

// tcp4 builds a minimal TCP/IPv4 packet from src to dst.
func tcp4(src, dst netip.AddrPort, size int) []byte {
	p := ipv4(src.Addr(), dst.Addr(), size, 0)
	p[9] = 6
	binary.BigEndian.PutUint16(p[20:], src.Port())
	binary.BigEndian.PutUint16(p[22:], dst.Port())
	return p
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestWatchFlows: Seen closes at the first delivery of its flow's TCP
// packets (not of another port, direction or protocol), is held back by
// a pause with the packet, and Stop leaves nothing watched.
func TestWatchFlows(t *testing.T) {
	n := compile(t, "name: w\ntdf: 10\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b], latency: 1ms}]\n")
	c, v := vclockAt(t, vclock.TDF{Num: 10, Den: 1})
	e, nodes := fakeNet(t, n, Options{Clock: v})
	a, b := netip.AddrPortFrom(addr(t, e, "a"), 40000), netip.AddrPortFrom(addr(t, e, "b"), 5201)
	other := netip.AddrPortFrom(b.Addr(), 5202)
	fw := e.WatchFlows([]Flow{{Src: b, Dst: a}, {Src: other, Dst: a}, {Src: netip.MustParseAddrPort("[2001:db8::1]:1"), Dst: a}})
	defer fw.Stop()
	if e.watch.n.Load() != 2 {
		t.Fatalf("%d flows watched, want 2 (the IPv6 one cannot be delivered)", e.watch.n.Load())
	}
	// Not the flow: the other direction, a UDP packet with its ports.
	nodes["a"].Write(tcp4(a, b, 100))
	readTimeout(t, nodes["b"], time.Second)
	u := tcp4(b, a, 100)
	u[9] = 17
	nodes["b"].Write(u)
	readTimeout(t, nodes["a"], time.Second)
	if closed(fw.Seen(0)) || closed(fw.Seen(1)) {
		t.Fatal("Seen closed by another flow's packet")
	}
	// The flow, sent while paused: held with the packet.
	if _, err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	e.ClockChanged()
	nodes["b"].Write(tcp4(b, a, 100))
	time.Sleep(50 * time.Millisecond) // 5 ms virtual if the pause did not hold
	if closed(fw.Seen(0)) {
		t.Fatal("Seen closed while its packet was held by the pause")
	}
	if _, err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	e.ClockChanged()
	readTimeout(t, nodes["a"], time.Second)
	select {
	case <-fw.Seen(0):
	case <-time.After(time.Second):
		t.Fatal("Seen not closed after its packet was delivered")
	}
	if closed(fw.Seen(1)) {
		t.Fatal("the other flow's Seen closed")
	}
	if e.watch.n.Load() != 1 {
		t.Errorf("%d flows watched after one was seen, want 1", e.watch.n.Load())
	}
	fw.Stop()
	fw.Stop()
	if e.watch.n.Load() != 0 || len(e.watch.m) != 0 {
		t.Errorf("after Stop: %d watched, %d keys", e.watch.n.Load(), len(e.watch.m))
	}
}
