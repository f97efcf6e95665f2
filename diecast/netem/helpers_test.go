package netem

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/topology"
)

// ipv4 builds a minimal IPv4 packet of size bytes from src to dst whose
// payload starts with seq (the emulator only reads the destination).
func ipv4(src, dst netip.Addr, size int, seq uint64) []byte {
	p := make([]byte, size)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(size))
	p[8] = 64
	p[9] = 17
	s, d := src.As4(), dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint64(p[20:], seq)
	return p
}

func seqOf(p []byte) uint64 { return binary.BigEndian.Uint64(p[20:]) }

// compile parses and compiles a YAML spec or fails the test.
func compile(t testing.TB, yaml string) *topology.Network {
	t.Helper()
	s, err := topology.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	n, err := topology.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeNet builds an emulator over fake endpoints and runs it; it returns
// the node-side endpoints by name. Cleanup closes it and checks Run ended.
func fakeNet(t testing.TB, n *topology.Network, opts Options) (*Emulator, map[string]*Fake) {
	t.Helper()
	eps := map[string]Endpoint{}
	nodes := map[string]*Fake{}
	for _, nd := range n.Nodes {
		a, b := NewFakePair(4096)
		eps[nd.Name] = a
		nodes[nd.Name] = b
	}
	e, err := New(n, eps, opts)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- e.Run() }()
	// Measure from a settled emulator: the scheduler asleep, waiting.
	for deadline := time.Now().Add(time.Second); e.state.Load() != 1 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
	t.Cleanup(func() {
		e.Close()
		if err := <-errc; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Run: %v", err)
		}
	})
	return e, nodes
}

// bestOf runs a real-time measurement up to n times and passes on the
// first success: the machine is shared, and a descheduled emulator misses
// deadlines through no fault of its own. Hard invariants inside f still
// fail at once through t.Fatal; f returns an error for the timing bound.
func bestOf(t *testing.T, n int, f func() error) {
	t.Helper()
	var err error
	for i := 0; i < n; i++ {
		if err = f(); err == nil {
			return
		}
		t.Logf("attempt %d: %v", i+1, err)
		time.Sleep(200 * time.Millisecond) // let a burst of host load pass
	}
	t.Fatalf("timing bound missed %d times: %v", n, err)
}
