package netem

import "testing"

// Forwarding a packet allocates nothing once warm: buffers come from
// pools, packets live by value in rings, and sleeping allocates nothing.
func TestNoAllocPerPacket(t *testing.T) {
	if raceOn {
		t.Skip("the race detector allocates on its own; run without -race")
	}
	n := compile(t, benchSpec)
	e, nodes := fakeNet(t, n, Options{})
	pkt := ipv4(addr(t, e, "a"), addr(t, e, "b"), 1000, 0)
	buf := make([]byte, 2048)
	send := func() {
		nodes["a"].Write(pkt)
		if _, err := nodes["b"].Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		send()
	}
	if a := testing.AllocsPerRun(500, send); a > 0.05 {
		t.Fatalf("%.2f allocations per forwarded packet, want 0", a)
	}
}
