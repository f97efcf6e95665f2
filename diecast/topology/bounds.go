package topology

import (
	"net/netip"
	"strings"
	"time"
)

// Bounds a spec must keep so that the experiment it describes works, not
// only parses: each is what a later stage needs (dilation, the node's
// cgroup, the kernel's routing), checked here so that an experiment that
// would break is refused with the key at fault instead of coming up broken.
// The node sandbox (diecast/node) checks the same constants.
const (
	// MinNodeMemory is the smallest memory limit of a node: its init (a
	// Go process) and, with --dilate, a supervisor per program are charged
	// to the node's cgroup. One dilated shell peaked at 4.4 MiB here
	// (memory.max_usage_in_bytes); below 16 MiB the init was OOM-killed
	// at the first exec.
	MinNodeMemory = ByteSize(16 << 20)
	// MinRealCPU is the smallest real CPU share (cpu / tdf) a node can
	// have: the kernel's minimum CFS quota, 1 ms per 100 ms period.
	MinRealCPU = 0.01
	// MaxLatency bounds a link's latency and jitter as written: scaled by
	// the largest TDF it stays far inside time.Duration.
	MaxLatency = Duration(time.Hour)
)

// reservedNames are host names every node already has (its /etc/hosts
// maps them to its own loopback): a node of that name would take them over
// in every node.
var reservedNames = map[string]bool{
	"localhost": true, "localhost4": true, "localhost6": true, "localdomain": true,
	"ip6-localhost": true, "ip6-loopback": true, "ip6-localnet": true, "ip6-mcastprefix": true,
	"ip6-allnodes": true, "ip6-allrouters": true, "ip6-allhosts": true, "broadcasthost": true,
}

// reservedName explains why s cannot name a node or a switch, or "".
func reservedName(s string) string {
	if reservedNames[s] {
		return "is reserved (every node resolves it to its own loopback)"
	}
	if strings.Trim(s, "0123456789") == "" {
		return "is all digits: resolvers read it as an IP address (inet_aton(\"" + s + "\"))"
	}
	return ""
}

// reservedNets are IPv4 ranges an experiment's nodes cannot be numbered
// from (RFC 6890): this network, loopback (a node would answer its own
// pings on lo and never use the links), link-local, multicast, and the
// reserved class E with the limited broadcast address.
var reservedNets = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" (RFC 1122)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback: a node would answer on its own lo and never use the links"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (RFC 3927)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (class E and the broadcast address)"},
}

// reservedSubnet explains why p cannot be an experiment's subnet, or "".
func reservedSubnet(p netip.Prefix) string {
	for _, r := range reservedNets {
		if r.p.Overlaps(p) {
			return "overlaps " + r.p.String() + ", " + r.why
		}
	}
	return ""
}
