package topology

import (
	"fmt"
	"net/netip"
)

// addresses validates explicit node addresses and assigns the others in
// node order from the subnet's first host address up.
func (c *compiler) addresses(s *Spec) {
	n := c.net
	p := n.Subnet
	first := p.Addr().Next() // skip the network address
	last := lastAddr(p)      // the broadcast address, never a host
	for _, nd := range n.Nodes {
		if nd.Group != "" {
			continue
		}
		a := s.Nodes[nd.Name].Address
		if a == "" {
			continue
		}
		path := "nodes." + nd.Name + ".address"
		addr, err := netip.ParseAddr(a)
		switch {
		case err != nil:
			c.fail(path, "%q is not an IP address: write e.g. %s (no prefix length; the subnet gives it)", a, first)
			continue
		case !addr.Is4():
			c.fail(path, "%q is not IPv4", a)
			continue
		case !p.Contains(addr) || addr == p.Addr() || addr == last:
			c.fail(path, "%s is not a host address in the subnet %s: set subnet: or pick another address", addr, p)
			continue
		}
		if other, dup := n.byAddr[addr]; dup {
			c.fail(path, "%s is already the address of node %q: addresses must be unique", addr, n.Nodes[other].Name)
			continue
		}
		nd.Addr = addr
		n.byAddr[addr] = nd.Index
	}
	next := first
	for _, nd := range n.Nodes {
		if nd.Addr.IsValid() {
			continue
		}
		for {
			if next == last || !p.Contains(next) {
				c.fail("subnet", "%s has too few addresses for %d nodes: give a larger subnet", p, len(n.Nodes))
				return
			}
			if _, taken := n.byAddr[next]; !taken {
				break
			}
			next = next.Next()
		}
		nd.Addr = next
		n.byAddr[next] = nd.Index
		next = next.Next()
	}
}

// lastAddr is the highest address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// String describes the network in one line.
func (n *Network) String() string {
	return fmt.Sprintf("%s: %d nodes, %d switches, %d directed links, tdf %v, subnet %s",
		n.Name, len(n.Nodes), len(n.Switches), len(n.Links), n.TDF, n.Subnet)
}
