package topology

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/vmux/vmux/rt/vclock"
)

// Limits that keep a spec sane.
const (
	MaxNodes    = 1024
	MaxNameLen  = 63
	MinQueue    = ByteSize(1500) // one full-size Ethernet packet
	defaultQDur = 0.1            // default queue: 100 ms of bandwidth...
	minQueueDef = ByteSize(64 << 10)
)

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// validName checks a DNS label (node names are host names in every node).
func validName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen || !labelRE.MatchString(s) {
		return fmt.Errorf("%q is not a valid name: use 1-%d lowercase letters, digits and '-', not starting or ending with '-'", s, MaxNameLen)
	}
	return nil
}

// compiler accumulates validation errors so one run reports them all (the
// first maxReported of them: a hostile spec can hold a million mistakes).
type compiler struct {
	errs  []error
	nfail int // every failure, reported or not
	net   *Network
	// groups maps a group name to its member node indexes.
	groups map[string][]int
}

// Bounds on what a failed Compile reports.
const (
	maxReported = 20  // problems listed
	maxMsg      = 300 // bytes of one message (names and values are echoed)
)

func (c *compiler) fail(path, format string, args ...any) {
	c.nfail++
	if len(c.errs) >= maxReported {
		return
	}
	e := specErr(path, format, args...)
	if len(e.Msg) > maxMsg {
		e.Msg = e.Msg[:maxMsg] + "..."
	}
	if len(e.Path) > maxMsg {
		e.Path = e.Path[:maxMsg] + "..."
	}
	c.errs = append(c.errs, e)
}

// Compile validates a spec and builds its Network. The error joins every
// problem found; each is a *SpecError matching ErrInvalidSpec.
func Compile(s *Spec) (*Network, error) {
	if s == nil {
		return nil, fmt.Errorf("compiling spec: %w", specErr("(spec)", "nil spec"))
	}
	c := &compiler{net: &Network{byName: map[string]int{}, byAddr: map[netip.Addr]int{}}, groups: map[string][]int{}}
	c.header(s)
	c.nodes(s)
	c.switches(s)
	if c.nfail == 0 {
		c.links(s)
	}
	if c.nfail == 0 {
		c.addresses(s)
	}
	if c.nfail == 0 {
		c.route()
	}
	if c.nfail > 0 {
		if c.nfail > len(c.errs) {
			c.errs = append(c.errs, specErr("(spec)", "and %d more problems", c.nfail-len(c.errs)))
		}
		return nil, fmt.Errorf("compiling spec %q: %w", short(s.Name), errors.Join(c.errs...))
	}
	return c.net, nil
}

func (c *compiler) header(s *Spec) {
	n := c.net
	n.Name = s.Name
	if s.Name == "" {
		c.fail("name", "missing: give the experiment a name (e.g. name: demo)")
	} else if err := validName(s.Name); err != nil || len(s.Name) > 32 {
		c.fail("name", "%q is not a valid experiment name: use 1-32 lowercase letters, digits and '-'", s.Name)
	}
	n.TDF = vclock.One
	if s.TDF != nil {
		// The same bounds as dilation's: a factor the spec accepts is one
		// every node process can run at.
		v := string(*s.TDF)
		k, err := vclock.ParseTDF(v)
		switch _, ferr := strconv.ParseFloat(v, 64); {
		case err == nil:
			n.TDF = k
		case ferr == nil:
			c.fail("tdf", "%s is out of range: the time-dilation factor must be from %v to %v (1 = real time)", v, vclock.MinTDF, vclock.MaxTDF)
		default:
			c.fail("tdf", "%q is not a time-dilation factor: write a number or a fraction, such as 10, 2.5 or 1/3", v)
		}
	}
	if s.Subnet == "" {
		// 10.120-219: clear of the 10.0-99 that sites and clouds often
		// use, Kubernetes' 10.96.0.0/12 services and flannel's 10.244/16.
		h := fnv.New32a()
		h.Write([]byte(s.Name))
		n.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(120 + h.Sum32()%100), 0, 0}), 16)
	} else {
		p, err := netip.ParsePrefix(s.Subnet)
		switch {
		case err != nil:
			c.fail("subnet", "%q is not a prefix: write e.g. 10.100.0.0/16", s.Subnet)
		case !p.Addr().Is4() || p.Bits() > 30 || p.Bits() < 8:
			c.fail("subnet", "%q must be an IPv4 prefix between /8 and /30", s.Subnet)
		case reservedSubnet(p.Masked()) != "":
			c.fail("subnet", "%s %s: use a private range such as 10.100.0.0/16", p.Masked(), reservedSubnet(p.Masked()))
		default:
			n.Subnet = p.Masked()
		}
	}
}

func (c *compiler) nodes(s *Spec) {
	if len(s.Nodes) == 0 {
		c.fail("nodes", "none given: an experiment needs at least one node")
		return
	}
	keys := make([]string, 0, len(s.Nodes))
	for k := range s.Nodes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := c.net
	add := func(path, name, group string, ns NodeSpec) {
		if why := reservedName(name); why != "" {
			c.fail(path, "node name %q %s: pick another name", name, why)
			return
		}
		if _, dup := n.byName[name]; dup {
			c.fail(path, "node %q is defined twice (a group member and a node share the name?)", name)
			return
		}
		if len(n.Nodes) >= MaxNodes {
			c.fail(path, "more than %d nodes", MaxNodes)
			return
		}
		nd := &Node{Name: name, Index: len(n.Nodes), Group: group, CPU: ns.CPU, Memory: ns.Memory, Disk: ns.Disk,
			Root: ns.Root, Writable: ns.Writable, Privileged: ns.Privileged}
		n.byName[name] = nd.Index
		n.Nodes = append(n.Nodes, nd)
		if group != "" {
			c.groups[group] = append(c.groups[group], nd.Index)
		}
	}
	for _, k := range keys {
		ns := s.Nodes[k]
		path := "nodes." + k
		if err := validName(k); err != nil {
			c.fail(path, "%v", err)
			continue
		}
		if ns.CPU < 0 || math.IsNaN(ns.CPU) || ns.CPU > 1024 {
			c.fail(path+".cpu", "%v is out of range: give a share of a core (0.5 = half a core, 0 = no limit)", ns.CPU)
		} else if k := n.TDF.Float64(); ns.CPU > 0 && ns.CPU/k < MinRealCPU {
			c.fail(path+".cpu", "%v of a core at tdf %v is %.3g of a real core, below the kernel's minimum quota of %v: give at least %.3g",
				ns.CPU, n.TDF, ns.CPU/k, MinRealCPU, MinRealCPU*k)
		}
		if ns.Memory < 0 {
			c.fail(path+".memory", "negative")
		} else if ns.Memory > 0 && ns.Memory < MinNodeMemory {
			c.fail(path+".memory", "%v is too small for the node's init (and its dilation supervisors): give at least %v, or 0 for no limit", ns.Memory, MinNodeMemory)
		}
		for _, r := range []struct {
			name string
			v    ByteRate
		}{{"read", ns.Disk.Read}, {"write", ns.Disk.Write}} {
			if r.v < 0 {
				c.fail(path+".disk."+r.name, "negative")
			} else if r.v > 0 && float64(r.v)/n.TDF.Float64() < 1 {
				c.fail(path+".disk."+r.name, "%v at tdf %v is below 1 byte/s of real rate (it would mean no limit)", r.v, n.TDF)
			}
		}
		if ns.Root != "" && (!filepath.IsAbs(ns.Root) || filepath.Clean(ns.Root) != ns.Root || ns.Root == "/") {
			c.fail(path+".root", "%q: give a clean absolute path of a directory other than / (leave it out for the host's)", ns.Root)
		}
		for i, w := range ns.Writable {
			if !filepath.IsAbs(w) || filepath.Clean(w) != w || w == "/" {
				c.fail(fmt.Sprintf("%s.writable[%d]", path, i), "%q: give a clean absolute path of a directory other than /", w)
			}
		}
		if ns.Disk.LatencyModel && ns.Privileged {
			c.fail(path+".disk.latency_model", "the disk latency model covers a sandboxed node's writable directories; a privileged node has none: remove latency_model or privileged")
		}
		if ns.Root != "" && ns.Privileged {
			c.fail(path+".root", "a privileged node runs on the host's file system: remove root or privileged")
		}
		if ns.Disk.ReadIOPS < 0 || ns.Disk.WriteIOPS < 0 {
			c.fail(path+".disk", "iops must be >= 0 (0 = no limit)")
		}
		switch {
		case ns.Count < 0:
			c.fail(path+".count", "%d is negative: give the number of nodes in the group", ns.Count)
		case ns.Count == 0:
			add(path, k, "", ns)
		default:
			if ns.Address != "" {
				c.fail(path+".address", "a group (count: %d) cannot have one address: remove it, addresses are assigned", ns.Count)
			}
			if ns.Count > MaxNodes {
				c.fail(path+".count", "%d is more than %d nodes", ns.Count, MaxNodes)
				continue
			}
			for i := 1; i <= ns.Count; i++ {
				name := fmt.Sprintf("%s%d", k, i)
				if len(name) > MaxNameLen {
					c.fail(path, "member name %q is too long", name)
					break
				}
				add(path, name, k, ns)
			}
		}
	}
}

func (c *compiler) switches(s *Spec) {
	n := c.net
	sw := append([]string(nil), s.Switches...)
	sort.Strings(sw)
	for i, name := range s.Switches {
		path := fmt.Sprintf("switches[%d]", i)
		if err := validName(name); err != nil {
			c.fail(path, "%v", err)
			continue
		}
		if why := reservedName(name); why != "" {
			c.fail(path, "switch name %q %s: pick another name", name, why)
			continue
		}
		if _, dup := n.byName[name]; dup {
			c.fail(path, "%q is already a node or a switch: names must be unique", name)
			continue
		}
		if _, grp := c.groups[name]; grp {
			c.fail(path, "%q is already a group name", name)
			continue
		}
		n.byName[name] = -1 // placeholder until indexes are final
	}
	if c.nfail > 0 {
		return
	}
	for i, name := range sw {
		n.byName[name] = len(n.Nodes) + i
	}
	n.Switches = sw
	n.names = make([]string, 0, len(n.Nodes)+len(sw))
	for _, nd := range n.Nodes {
		n.names = append(n.names, nd.Name)
	}
	n.names = append(n.names, sw...)
}

// short is s cut to a length fit for a message.
func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
