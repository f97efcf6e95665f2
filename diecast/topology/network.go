package topology

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vmux/vmux/rt/vclock"
)

// Network is the compiled, validated runtime form of a Spec: nodes in a
// fixed order with addresses, directed links with their parameters scaled
// by the TDF, and shortest-path routes. It is immutable after Compile and
// safe for concurrent reads.
type Network struct {
	Name   string
	TDF    vclock.TDF // exact
	Subnet netip.Prefix
	// Nodes in spec order (entries sorted by name, group members in
	// numeric order); Node.Index is the position here.
	Nodes []*Node
	// Switches sorted by name.
	Switches []string
	// Links are directed: every spec link gives two, Reverse of each other.
	Links []*Link

	byName map[string]int // vertex index: nodes 0..len(Nodes)-1, then switches
	byAddr map[netip.Addr]int
	names  []string
	// parent[src][v] is the link entering v on the shortest-path tree
	// rooted at node src, or -1.
	parent [][]int32
}

// Node is one sandboxed host of the experiment.
type Node struct {
	Name  string
	Index int
	// Group is the group name for members of a counted group, else "".
	Group  string
	Addr   netip.Addr
	CPU    float64
	Memory ByteSize
	Disk   DiskSpec
	// Root, Writable and Privileged are the node's sandbox (NodeSpec).
	Root       string
	Writable   []string
	Privileged bool
}

// Link is one direction of a spec link.
type Link struct {
	ID       int
	From, To string
	// Reverse is the ID of the link in the opposite direction.
	Reverse int
	// Spec is the index of the spec link this came from (after group
	// expansion several directed links share one).
	Spec int
	// Virtual holds the parameters as written (the experiment's units).
	Virtual LinkParams
	// Real holds the parameters applied in real time: Virtual scaled by
	// the TDF (bandwidth / k, latency and jitter x k, queue and loss as is).
	Real LinkParams

	from, to int // vertex indexes
}

// Prefix is the node's address with the subnet's prefix length, as its
// interface carries it.
func (n *Node) Prefix(net *Network) netip.Prefix {
	return netip.PrefixFrom(n.Addr, net.Subnet.Bits())
}

// Node returns the node called name.
func (n *Network) Node(name string) (*Node, bool) {
	i, ok := n.byName[name]
	if !ok || i >= len(n.Nodes) {
		return nil, false
	}
	return n.Nodes[i], true
}

// NodeByAddr returns the node holding addr.
func (n *Network) NodeByAddr(addr netip.Addr) (*Node, bool) {
	i, ok := n.byAddr[addr]
	if !ok {
		return nil, false
	}
	return n.Nodes[i], true
}

// Route returns the IDs of the directed links a packet from node src to
// node dst traverses, in order (nil when src == dst). Paths are shortest
// in hops, only switches forward, and ties break on vertex names.
func (n *Network) Route(src, dst int) ([]int, error) {
	if src < 0 || dst < 0 || src >= len(n.Nodes) || dst >= len(n.Nodes) {
		return nil, fmt.Errorf("routing %d -> %d: %w", src, dst, ErrUnknownNode)
	}
	var rev []int
	for v := dst; v != src; {
		l := n.parent[src][v]
		if l < 0 {
			return nil, fmt.Errorf("routing %s -> %s: %w", n.Nodes[src].Name, n.Nodes[dst].Name, ErrNoRoute)
		}
		rev = append(rev, int(l))
		v = n.Links[l].from
	}
	path := make([]int, len(rev))
	for i, l := range rev {
		path[len(rev)-1-i] = l
	}
	return path, nil
}

// RouteByName is Route with node names.
func (n *Network) RouteByName(src, dst string) ([]int, error) {
	a, ok := n.Node(src)
	if !ok {
		return nil, fmt.Errorf("routing from %q: %w", src, ErrUnknownNode)
	}
	b, ok := n.Node(dst)
	if !ok {
		return nil, fmt.Errorf("routing to %q: %w", dst, ErrUnknownNode)
	}
	return n.Route(a.Index, b.Index)
}

// PathParams summarises a route: the sum of latencies, the narrowest
// bandwidth (0 = unlimited) and the end-to-end loss probability.
type PathParams struct {
	Hops      int
	Latency   time.Duration
	Bandwidth Bitrate
	Loss      float64
}

// Path sums the parameters along the route src -> dst; real selects the
// TDF-scaled values instead of the virtual ones.
func (n *Network) Path(src, dst string, real bool) (PathParams, error) {
	r, err := n.RouteByName(src, dst)
	if err != nil {
		return PathParams{}, err
	}
	p := PathParams{Hops: len(r)}
	pass := 1.0
	for _, id := range r {
		lp := n.Links[id].Virtual
		if real {
			lp = n.Links[id].Real
		}
		p.Latency += time.Duration(lp.Latency)
		if lp.Bandwidth > 0 && (p.Bandwidth == 0 || lp.Bandwidth < p.Bandwidth) {
			p.Bandwidth = lp.Bandwidth
		}
		pass *= 1 - float64(lp.Loss)
	}
	p.Loss = 1 - pass
	return p, nil
}

// Scale returns the real-time parameters of p at TDF k (the DieCast rule).
func (p LinkParams) Scale(k vclock.TDF) LinkParams {
	r := p
	f := k.Float64()
	r.Bandwidth = Bitrate(float64(p.Bandwidth) / f)
	r.Latency = Duration(float64(p.Latency) * f)
	r.Jitter = Duration(float64(p.Jitter) * f)
	return r
}
