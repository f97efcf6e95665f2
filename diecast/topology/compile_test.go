package topology

import (
	"errors"
	"github.com/vmux/vmux/rt/vclock"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func mustCompile(t *testing.T, y string) *Network {
	t.Helper()
	s, err := Parse([]byte(y))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	n, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return n
}

func TestDemoSpec(t *testing.T) {
	n, err := Load("../../examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "demo" || n.TDF != vclock.One || len(n.Nodes) != 2 || len(n.Switches) != 1 || len(n.Links) != 4 {
		t.Fatalf("unexpected network %v", n)
	}
	a, _ := n.Node("a")
	b, _ := n.Node("b")
	if a.CPU != 0.5 || a.Memory != 256<<20 || b.Disk.Read != 50e6 || b.Disk.Write != 20e6 {
		t.Fatalf("node resources: %+v %+v", a, b)
	}
	if !n.Subnet.Contains(a.Addr) || !n.Subnet.Contains(b.Addr) || a.Addr == b.Addr {
		t.Fatalf("addresses %v %v not distinct in %v", a.Addr, b.Addr, n.Subnet)
	}
	if a.Prefix(n).Bits() != 16 {
		t.Fatalf("prefix %v", a.Prefix(n))
	}
	r, err := n.RouteByName("a", "b")
	if err != nil || len(r) != 2 {
		t.Fatalf("route a->b = %v, %v", r, err)
	}
	if l := n.Links[r[0]]; l.From != "a" || l.To != "s1" || l.Real.Queue != 64<<10 {
		t.Fatalf("first hop %+v", l)
	}
	// b-s1 has no queue: default is max(64KiB, 100 ms of 100Mbit) = 1.25 MB.
	if l := n.Links[r[1]]; l.From != "s1" || l.To != "b" || l.Real.Queue != 1250000 {
		t.Fatalf("second hop %+v", l)
	}
	p, err := n.Path("a", "b", true)
	if err != nil || p.Latency != 10*time.Millisecond || p.Bandwidth != 100e6 || p.Hops != 2 {
		t.Fatalf("path %+v, %v", p, err)
	}
	if nd, ok := n.NodeByAddr(b.Addr); !ok || nd.Name != "b" {
		t.Fatalf("NodeByAddr(%v) = %v", b.Addr, nd)
	}
}

func TestBiggerExample(t *testing.T) {
	n, err := Load("../../examples/datacenter.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Every pair of nodes routes, and routes are the same on a recompile.
	m, err := Load("../../examples/datacenter.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range n.Nodes {
		for _, b := range n.Nodes {
			if a == b {
				continue
			}
			r1, err1 := n.Route(a.Index, b.Index)
			r2, err2 := m.Route(a.Index, b.Index)
			if err1 != nil || err2 != nil || len(r1) == 0 || len(r1) != len(r2) {
				t.Fatalf("route %s->%s: %v %v %v %v", a.Name, b.Name, r1, r2, err1, err2)
			}
			for i := range r1 {
				if r1[i] != r2[i] {
					t.Fatalf("route %s->%s not deterministic: %v vs %v", a.Name, b.Name, r1, r2)
				}
			}
		}
	}
}

func TestGroupsScalingAndDirections(t *testing.T) {
	n := mustCompile(t, `
name: g
tdf: 10
subnet: 192.168.77.0/24
nodes:
  web: {count: 3, cpu: 0.25}
  db: {address: 192.168.77.200}
switches: [core, edge]
links:
  - {ends: [web, edge], bandwidth: 1Gbit, latency: 100us, jitter: 10us, queue: 64KiB}
  - {ends: [edge, core], bandwidth: 10Gbit, latency: 1ms, loss: 0.1%,
     forward: {bandwidth: 1Gbit}, reverse: {latency: 2ms, queue: 1MiB}}
  - {ends: [db, core], bandwidth: 1Gbit}
`)
	var names []string
	for _, nd := range n.Nodes {
		names = append(names, nd.Name)
	}
	if got := strings.Join(names, ","); got != "db,web1,web2,web3" {
		t.Fatalf("nodes %s", got)
	}
	db, _ := n.Node("db")
	w1, _ := n.Node("web1")
	if db.Addr != netip.MustParseAddr("192.168.77.200") || w1.Addr != netip.MustParseAddr("192.168.77.1") || w1.Group != "web" || w1.CPU != 0.25 {
		t.Fatalf("db %+v web1 %+v", db, w1)
	}
	r, err := n.RouteByName("web2", "db")
	if err != nil || len(r) != 3 {
		t.Fatalf("route %v %v", r, err)
	}
	first, mid := n.Links[r[0]], n.Links[r[1]]
	if first.Real.Bandwidth != 1e8 || time.Duration(first.Real.Latency) != time.Millisecond ||
		time.Duration(first.Real.Jitter) != 100*time.Microsecond || first.Real.Queue != 64<<10 {
		t.Fatalf("TDF 10 scaling of %+v", first.Real)
	}
	if first.Virtual.Bandwidth != 1e9 {
		t.Fatalf("virtual bandwidth %v", first.Virtual.Bandwidth)
	}
	// edge -> core is the forward direction: bandwidth overridden.
	if mid.From != "edge" || mid.Virtual.Bandwidth != 1e9 || mid.Virtual.Loss != 0.001 {
		t.Fatalf("forward %+v", mid)
	}
	rev := n.Links[mid.Reverse]
	if rev.Virtual.Bandwidth != 10e9 || time.Duration(rev.Virtual.Latency) != 2*time.Millisecond || rev.Virtual.Queue != 1<<20 {
		t.Fatalf("reverse %+v", rev)
	}
}

func TestDefaultSubnet(t *testing.T) {
	n := mustCompile(t, "name: x\nnodes: {a: {}}\n")
	if n.TDF != vclock.One || n.Subnet.Bits() != 16 || n.Subnet.Addr().As4()[0] != 10 {
		t.Fatalf("defaults: tdf %v subnet %v", n.TDF, n.Subnet)
	}
	if o := n.Subnet.Addr().As4()[1]; o < 120 || o > 219 {
		t.Fatalf("subnet %v outside 10.120-219", n.Subnet)
	}
}

// TestInvalidSpecs checks that each bad spec fails with a message naming
// the key, node or link at fault and matching ErrInvalidSpec.
func TestInvalidSpecs(t *testing.T) {
	base := "name: e\nnodes: {a: {}, b: {}}\nswitches: [s1]\n"
	okLinks := "links:\n  - {ends: [a, s1]}\n  - {ends: [b, s1]}\n"
	for _, c := range []struct{ name, spec, want string }{
		{"unknown top key", base + okLinks + "colour: red\n", `unknown key "colour"`},
		{"unknown node key", "name: e\nnodes: {a: {cpus: 1}}\n", `unknown key "cpus" (valid keys here: cpu, memory`},
		{"unknown link key", base + "links: [{ends: [a, s1], bandwith: 1Gbit}, {ends: [b, s1]}]\n", `unknown key "bandwith"`},
		{"bad unit", base + "links: [{ends: [a, s1], bandwidth: 100Mbt}, {ends: [b, s1]}]\n", `line 4: bad bandwidth "100Mbt"`},
		{"bare bandwidth", base + "links: [{ends: [a, s1], bandwidth: 100}, {ends: [b, s1]}]\n", `missing unit`},
		{"bad latency", base + "links: [{ends: [a, s1], latency: 5}, {ends: [b, s1]}]\n", `bad duration "5"`},
		{"bad loss", base + "links: [{ends: [a, s1], loss: 5}, {ends: [b, s1]}]\n", `bad fraction "5"`},
		{"bad memory", "name: e\nnodes: {a: {memory: 1Gq}}\n", `bad size "1Gq"`},
		{"missing node", base + "links: [{ends: [a, s1]}, {ends: [c, s1]}]\n", `links[1].ends[0]: "c" is not a node, group or switch`},
		{"self link", base + okLinks + "  - {ends: [a, a]}\n", "both ends are"},
		{"one end", base + "links: [{ends: [a]}, {ends: [b, s1]}]\n", "give exactly two ends"},
		{"dup link", base + okLinks + "  - {ends: [s1, a]}\n", "duplicate link between"},
		{"dup name", base + okLinks + "  - {ends: [a, b]}\n", ""}, // valid: direct link
		{"switch shadows node", "name: e\nnodes: {a: {}}\nswitches: [a]\n", `"a" is already a node`},
		{"dup address", "name: e\nsubnet: 10.9.0.0/16\nnodes: {a: {address: 10.9.0.5}, b: {address: 10.9.0.5}}\nlinks: [{ends: [a, b]}]\n", `already the address of node "a"`},
		{"address outside", "name: e\nsubnet: 10.9.0.0/16\nnodes: {a: {address: 10.8.0.5}}\n", "not a host address in the subnet"},
		{"address broadcast", "name: e\nsubnet: 10.9.0.0/24\nnodes: {a: {address: 10.9.0.255}}\n", "not a host address"},
		{"address cidr", "name: e\nnodes: {a: {address: 10.9.0.5/24}}\n", "is not an IP address"},
		{"group address", "name: e\nnodes: {w: {count: 2, address: 10.1.1.1}}\nswitches: [s]\nlinks: [{ends: [w, s]}]\n", "cannot have one address"},
		{"group clash", "name: e\nnodes: {w: {count: 2}, w1: {}}\nswitches: [s]\nlinks: [{ends: [w, s]}, {ends: [w1, s]}]\n", `node "w1" is defined twice`},
		{"group to group", "name: e\nnodes: {w: {count: 2}, v: {count: 2}}\nlinks: [{ends: [w, v]}]\n", "are both groups"},
		{"no link", base + "links: [{ends: [a, s1]}]\n", `node "b" has no link`},
		{"lonely switch", "name: e\nnodes: {a: {}, b: {}}\nswitches: [s1, s2]\nlinks: [{ends: [a, s1]}, {ends: [b, s1]}]\n", `switch "s2" has no link`},
		{"disconnected", "name: e\nnodes: {a: {}, b: {}, c: {}, d: {}}\nlinks: [{ends: [a, b]}, {ends: [c, d]}]\n", "are not connected"},
		{"nodes do not forward", "name: e\nnodes: {a: {}, b: {}, c: {}}\nlinks: [{ends: [a, b]}, {ends: [b, c]}]\n", `nodes "a" and "c" are not connected`},
		{"tdf zero", base + okLinks + "tdf: 0\n", "tdf: 0 is out of range"},
		{"tdf negative", base + okLinks + "tdf: -2\n", "tdf: -2 is out of range"},
		// Issue 10 item 9: accepted here, then every dilated exec failed.
		{"tdf below dilation's bound", base + okLinks + "tdf: 1e-9\n", "tdf: 1e-9 is out of range"},
		{"tdf above dilation's bound", base + okLinks + "tdf: 10001\n", "tdf: 10001 is out of range"},
		{"tdf not a number", base + okLinks + "tdf: fast\n", `tdf: "fast" is not a time-dilation factor`},
		{"no name", "nodes: {a: {}}\n", "name: missing"},
		{"bad name", "name: Demo_1\nnodes: {a: {}}\n", "not a valid experiment name"},
		{"bad node name", "name: e\nnodes: {A_b: {}}\n", "is not a valid name"},
		{"no nodes", "name: e\n", "nodes: none given"},
		{"negative cpu", "name: e\nnodes: {a: {cpu: -1}}\n", "nodes.a.cpu"},
		{"tiny queue", base + "links: [{ends: [a, s1], queue: 100}, {ends: [b, s1]}]\n", "links[0].queue: 100B is smaller than one"},
		{"tiny reverse queue", base + "links: [{ends: [a, s1], reverse: {queue: 100}}, {ends: [b, s1]}]\n", "links[0].reverse.queue"},
		{"slow link", base + "links: [{ends: [a, s1], bandwidth: 10bit}, {ends: [b, s1]}]\n", "below 1kbit"},
		{"bad subnet", "name: e\nsubnet: 10.0.0.0/31\nnodes: {a: {}}\n", "between /8 and /30"},
		{"small subnet", "name: e\nsubnet: 10.0.0.0/30\nnodes: {a: {}, b: {}, c: {}}\nswitches: [s]\nlinks: [{ends: [a, s]}, {ends: [b, s]}, {ends: [c, s]}]\n", "too few addresses"},
		{"dup yaml key", "name: e\nnodes: {a: {}, a: {}}\n", `"a" already defined`},
		{"negative count", "name: e\nnodes: {a: {count: -1}}\n", "nodes.a.count"},
		{"empty", "", "empty spec"},
		{"two docs", "name: e\nnodes: {a: {}}\n---\nname: f\n", "more than one YAML document"},
		{"list not map", "name: e\nnodes: [a, b]\n", "cannot unmarshal"},
		{"relative root", "name: e\nnodes: {a: {root: srv/a}}\n", "nodes.a.root"},
		{"root /", "name: e\nnodes: {a: {root: /}}\n", "nodes.a.root"},
		{"unclean root", "name: e\nnodes: {a: {root: /srv/../etc}}\n", "nodes.a.root"},
		{"privileged root", "name: e\nnodes: {a: {root: /srv/a, privileged: true}}\n", "a privileged node runs on the host's"},
		{"relative writable", "name: e\nnodes: {a: {writable: [data]}}\n", "nodes.a.writable[0]"},
		{"privileged latency model", "name: e\nnodes: {a: {privileged: true, disk: {latency_model: true}}}\n", "nodes.a.disk.latency_model: the disk latency model"},
		{"latency model typo", "name: e\nnodes: {a: {disk: {latency_modle: true}}}\n", "latency_model"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse([]byte(c.spec))
			if err == nil {
				_, err = Compile(s)
			}
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid spec rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want error containing %q", c.want)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error %v does not match ErrInvalidSpec", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q\ndoes not contain %q", err, c.want)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	s, err := Parse([]byte("name: e\nnodes: {a: {cpu: -1}, b: {count: -2}}\ntdf: -1\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(s)
	for _, w := range []string{"tdf", "nodes.a.cpu", "nodes.b.count"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not report %s", err, w)
		}
	}
	var se *SpecError
	if !errors.As(err, &se) {
		t.Errorf("no *SpecError in %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/spec.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
}

func TestRouteErrors(t *testing.T) {
	n := mustCompile(t, "name: e\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\n")
	if _, err := n.Route(0, 5); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("Route(0,5): %v", err)
	}
	if _, err := n.RouteByName("a", "zz"); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("RouteByName: %v", err)
	}
	if r, err := n.RouteByName("a", "a"); err != nil || len(r) != 0 {
		t.Fatalf("self route %v %v", r, err)
	}
}

// TestTDFExact: a fractional factor stays exact from the spec on (it is
// the clock's factor, not a float formatted back into a string).
func TestTDFExact(t *testing.T) {
	for in, want := range map[string]vclock.TDF{"1/3": {Num: 1, Den: 3}, `"2.5"`: {Num: 5, Den: 2}, "10": {Num: 10, Den: 1}} {
		s, err := Parse([]byte("name: e\ntdf: " + in + "\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b], latency: 3ms}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		n, err := Compile(s)
		if err != nil {
			t.Fatalf("tdf %s: %v", in, err)
		}
		if n.TDF != want {
			t.Errorf("tdf %s: compiled %v, want %v", in, n.TDF, want)
		}
	}
}

func TestSandboxFields(t *testing.T) {
	s, err := Parse([]byte("name: e\nnodes:\n  a: {root: /srv/a, writable: [/var/lib/a]}\n  b: {privileged: true}\n  w: {count: 2, writable: [/data]}\nswitches: [s]\nlinks: [{ends: [a, s]}, {ends: [b, s]}, {ends: [w, s]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := n.Node("a")
	b, _ := n.Node("b")
	w2, _ := n.Node("w2")
	if a.Root != "/srv/a" || len(a.Writable) != 1 || a.Writable[0] != "/var/lib/a" || a.Privileged {
		t.Errorf("a: %+v", a)
	}
	if !b.Privileged || b.Root != "" {
		t.Errorf("b: %+v", b)
	}
	if len(w2.Writable) != 1 || w2.Writable[0] != "/data" {
		t.Errorf("group member w2: %+v", w2)
	}
}
