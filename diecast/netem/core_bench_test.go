package netem

import "testing"

// BenchmarkForwardCore: the emulator's own per-packet work on one thread
// (its CPU cost, free of the handoff dynamics CapacityFake measures),
// without goroutine handoffs: classify and enter the first link (a reader's
// part), then pop, move to the second link, pop and free (the scheduler's),
// 256 packets at a time.
func BenchmarkForwardCore(b *testing.B) {
	n := compile(b, benchSpec)
	eps := map[string]Endpoint{}
	for _, nd := range n.Nodes {
		x, _ := NewFakePair(4)
		eps[nd.Name] = x
	}
	e, err := New(n, eps, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	pkt := ipv4(addr(b, e, "a"), addr(b, e, "b"), 64, 0)
	const burst = 256
	b.ResetTimer()
	for i := 0; i < b.N; i += burst {
		e.mu.Lock()
		for j := 0; j < burst; j++ {
			pk, _ := e.classify(0, pkt)
			e.enter(e.paths[pk.path][0], pk, 0)
		}
		e.mu.Unlock()
		e.mu.Lock()
		for len(e.heap) > 0 {
			p := e.heap[0]
			pk := e.take(p) // as schedule does
			if p.q.len() == 0 {
				e.heapPop()
			} else {
				e.heapFix(0)
			}
			path := e.paths[pk.path]
			if int(pk.hop)+1 < len(path) {
				pk.hop++
				e.enter(path[pk.hop], pk, pk.at)
				continue
			}
			putBuf(pk.buf)
		}
		e.mu.Unlock()
	}
}
