package netem

import (
	"testing"
	"time"
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

func TestForwardSmoke(t *testing.T) {
	n := compile(t, twoNodes)
	_, nodes := fakeNet(t, n, Options{})
	a, _ := n.Node("a")
	b, _ := n.Node("b")
	start := time.Now()
	if _, err := nodes["a"].Write(ipv4(a.Addr, b.Addr, 1000, 7)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	k, err := nodes["b"].Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if seqOf(buf[:k]) != 7 || k != 1000 {
		t.Fatalf("got %d bytes seq %d", k, seqOf(buf[:k]))
	}
	// Two hops: 2 x (5 ms + 80 us serialization).
	want := 10*time.Millisecond + 160*time.Microsecond
	if el < want || el > want+3*time.Millisecond {
		t.Fatalf("one-way delay %v, want %v (+3ms)", el, want)
	}
	t.Logf("one-way delay %v (model %v)", el, want)
}
