package topology

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// checkReport: a refusal is quick and its message bounded, whatever the
// input's size.
func checkReport(t *testing.T, err error, t0 time.Time) {
	t.Helper()
	if n := len(err.Error()); n > 16<<10 {
		t.Fatalf("error message of %d bytes", n)
	}
	if d := time.Since(t0); d > 20*time.Second { // (with -race: ~4 s at most here)
		t.Fatalf("refused after %v", d)
	}
}

// FuzzParseCompile: any input either compiles into a consistent network
// that the later stages accept (a factor dilation takes, memory enough for
// a node's init, no reserved subnet or name) or fails with an
// ErrInvalidSpec error of bounded size, quickly; never a panic. The seeds
// include specs of hostile sizes (hostileSpecs).
func FuzzParseCompile(f *testing.F) {
	for _, p := range []string{"../../examples/demo.yaml", "../../examples/datacenter.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("name: e\nnodes: {w: {count: 3}}\nswitches: [s]\nlinks: [{ends: [w, s], forward: {loss: 1%}}]\n"))
	f.Add([]byte("name: e\ntdf: 1e300\nnodes: {a: {address: 10.0.0.1}}\nsubnet: 10.0.0.0/8\n"))
	for _, b := range hostileSpecs() {
		f.Add(b)
	}
	f.Add([]byte("name: e\ntdf: 0.0001\nsubnet: 127.0.0.0/8\nnodes: {localhost: {memory: 1Mi}, \"7\": {}}\nlinks: [{ends: [localhost, \"7\"]}]\n"))
	f.Add([]byte("name: e\n" + strings.Repeat("k: 1\n", 5000)))
	f.Fuzz(func(t *testing.T, data []byte) {
		t0 := time.Now()
		s, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("Parse error not ErrInvalidSpec: %v", err)
			}
			checkReport(t, err, t0)
			return
		}
		n, err := Compile(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("Compile error not ErrInvalidSpec: %v", err)
			}
			checkReport(t, err, t0)
			return
		}
		if err := n.TDF.Validate(); err != nil {
			t.Fatalf("compiled tdf %v that dilation refuses: %v", n.TDF, err)
		}
		if why := reservedSubnet(n.Subnet); why != "" {
			t.Fatalf("compiled subnet %v: %s", n.Subnet, why)
		}
		seen := map[string]bool{}
		for _, nd := range n.Nodes {
			if nd.Memory != 0 && nd.Memory < MinNodeMemory || reservedName(nd.Name) != "" {
				t.Fatalf("compiled node %s with memory %v", nd.Name, nd.Memory)
			}
			if seen[nd.Addr.String()] || !n.Subnet.Contains(nd.Addr) {
				t.Fatalf("bad address %v for %s", nd.Addr, nd.Name)
			}
			seen[nd.Addr.String()] = true
		}
		if len(n.Nodes) <= 8 {
			for _, a := range n.Nodes {
				for _, b := range n.Nodes {
					if _, err := n.Route(a.Index, b.Index); err != nil {
						t.Fatalf("compiled network without route %s->%s: %v", a.Name, b.Name, err)
					}
				}
			}
		}
	})
}
