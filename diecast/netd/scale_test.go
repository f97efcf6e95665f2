package netd

import (
	"testing"
	"time"
)

const scale64 = `name: %s
nodes:
  n: {count: 64, cpu: 0.1, memory: 64Mi}
switches: [s1]
links:
  - {ends: [n, s1], bandwidth: 100Mbit, latency: 1ms}
`

// TestScale64: 64 nodes come up in <= 10 s, reach each other, and go down
// in <= 5 s leaving nothing behind.
func TestScale64(t *testing.T) {
	t0 := time.Now()
	st := upFast(t, scale64)
	upTook := time.Since(t0)
	if len(st.Nodes) != 64 {
		t.Fatalf("%d nodes up, want 64", len(st.Nodes))
	}
	if _, _, es := execIn(t, st, "n1", "ping", "-c", "1", "-W", "2", "n64"); es.Code != 0 {
		t.Errorf("n1 cannot reach n64: %+v", es)
	}
	t0 = time.Now()
	if err := Down(st.Name, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	downTook := time.Since(t0)
	checkGone(t, st)
	t.Logf("64 nodes: up %v, down %v", upTook, downTook)
	if upTook > 10*time.Second {
		t.Errorf("up took %v, want <= 10 s", upTook)
	}
	if downTook > 5*time.Second {
		t.Errorf("down took %v, want <= 5 s", downTook)
	}
}
