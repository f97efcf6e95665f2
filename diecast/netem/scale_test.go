package netem

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestAllPairsDatacenter sends one packet between every ordered pair of
// the 27 servers of examples/datacenter.yaml at once (702 packets over
// 2-4 hops, TDF 10) and checks that each arrives once, at the right node,
// no earlier than its path's latency, and that the link counters add up.
func TestAllPairsDatacenter(t *testing.T) {
	n := compile(t, readExample(t, "datacenter.yaml"))
	e, nodes := fakeNet(t, n, Options{})
	var servers []int
	for _, nd := range n.Nodes {
		if nd.Name != "client" {
			servers = append(servers, nd.Index)
		}
	}
	start := time.Now()
	want := map[string]map[uint64]bool{}
	hops := uint64(0)
	for _, s := range servers {
		for _, d := range servers {
			if s == d {
				continue
			}
			src, dst := n.Nodes[s], n.Nodes[d]
			seq := uint64(s*1000 + d)
			if want[dst.Name] == nil {
				want[dst.Name] = map[uint64]bool{}
			}
			want[dst.Name][seq] = true
			r, err := n.Route(s, d)
			if err != nil {
				t.Fatal(err)
			}
			hops += uint64(len(r))
			nodes[src.Name].Write(ipv4(src.Addr, dst.Addr, 200, seq))
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			st := e.Stats()
			drops := uint64(0)
			for _, f := range nodes {
				drops += f.Drops() + f.peer.Drops()
			}
			t.Logf("stats: received %d delivered %d noroute %d notv4 %d readerr %d writeerr %d fake drops %d",
				st.Received, st.Delivered, st.NoRoute, st.NotIPv4, st.ReadErrs, st.WriteErrs, drops)
			for _, l := range st.Links {
				if l.QueueDrops+l.LossDrops > 0 || l.Packets != l.Sent {
					t.Logf("link %+v", l)
				}
			}
		}
	})
	for name, seqs := range want {
		for range seqs {
			p := readTimeout(t, nodes[name], 2*time.Second)
			seq := seqOf(p)
			if !seqs[seq] {
				t.Fatalf("%s got unexpected or duplicate packet %d", name, seq)
			}
			seqs[seq] = false
			src, dst := n.Nodes[seq/1000], n.Nodes[seq%1000]
			pp, err := n.Path(src.Name, dst.Name, true)
			if err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el < pp.Latency {
				t.Fatalf("%s->%s after %v, before its path latency %v", src.Name, dst.Name, el, pp.Latency)
			}
		}
	}
	st := e.Stats()
	var offered, sent uint64
	for _, l := range st.Links {
		offered += l.Packets
		sent += l.Sent
	}
	if offered != hops || sent != hops || st.Received != uint64(len(servers)*(len(servers)-1)) {
		t.Fatalf("links offered %d sent %d, want %d hops; received %d", offered, sent, hops, st.Received)
	}
}

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
