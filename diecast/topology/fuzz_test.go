package topology

import (
	"errors"
	"os"
	"testing"
)

// FuzzParseCompile: any input either compiles into a consistent network or
// fails with an ErrInvalidSpec error; never a panic.
func FuzzParseCompile(f *testing.F) {
	for _, p := range []string{"../../examples/demo.yaml", "../../examples/datacenter.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("name: e\nnodes: {w: {count: 3}}\nswitches: [s]\nlinks: [{ends: [w, s], forward: {loss: 1%}}]\n"))
	f.Add([]byte("name: e\ntdf: 1e300\nnodes: {a: {address: 10.0.0.1}}\nsubnet: 10.0.0.0/8\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("Parse error not ErrInvalidSpec: %v", err)
			}
			return
		}
		n, err := Compile(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("Compile error not ErrInvalidSpec: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, nd := range n.Nodes {
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
