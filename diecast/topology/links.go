package topology

import (
	"fmt"
	"math"
)

// DefaultQueue is the queue of a link that gives none: 100 ms of its
// bandwidth, at least 64 KiB (unlimited bandwidth: 64 KiB).
func DefaultQueue(bw Bitrate) ByteSize {
	q := ByteSize(float64(bw) * defaultQDur / 8)
	if q < minQueueDef {
		q = minQueueDef
	}
	return q
}

// resolve returns the vertex indexes a link end names: one node or switch,
// or every member of a group.
func (c *compiler) resolve(name string) ([]int, bool) {
	if m, ok := c.groups[name]; ok {
		return m, true
	}
	if i, ok := c.net.byName[name]; ok {
		return []int{i}, false
	}
	return nil, false
}

// checkParams validates one direction's parameters.
func (c *compiler) checkParams(path string, p *LinkParams) {
	if p.Queue != 0 && p.Queue < MinQueue {
		c.fail(path+".queue", "%v is smaller than one %d-byte packet: give at least %v", p.Queue, MinQueue, MinQueue)
	}
	if p.Bandwidth < 0 || math.IsInf(float64(p.Bandwidth), 0) {
		c.fail(path+".bandwidth", "out of range")
	}
	if p.Latency < 0 || p.Latency > MaxLatency || p.Jitter < 0 || p.Jitter > MaxLatency {
		c.fail(path+".latency", "latency %v, jitter %v: give 0 to %v each", p.Latency, p.Jitter, MaxLatency)
	}
	if p.Bandwidth > 0 && p.Bandwidth < 1000 {
		c.fail(path+".bandwidth", "%v is below 1kbit: too slow to carry a packet in useful time", p.Bandwidth)
	}
	if p.Queue == 0 {
		p.Queue = DefaultQueue(p.Bandwidth)
	}
}

// override applies one direction's overrides to the link's parameters.
func override(p LinkParams, d *DirParams) LinkParams {
	if d == nil {
		return p
	}
	if d.Bandwidth != nil {
		p.Bandwidth = *d.Bandwidth
	}
	if d.Latency != nil {
		p.Latency = *d.Latency
	}
	if d.Jitter != nil {
		p.Jitter = *d.Jitter
	}
	if d.Loss != nil {
		p.Loss = *d.Loss
	}
	if d.Queue != nil {
		p.Queue = *d.Queue
	}
	return p
}

func (c *compiler) links(s *Spec) {
	n := c.net
	seen := map[[2]int]int{} // unordered vertex pair -> spec link
	used := make([]bool, len(n.names))
	for i, ls := range s.Links {
		path := fmt.Sprintf("links[%d]", i)
		if len(ls.Ends) != 2 {
			c.fail(path+".ends", "give exactly two ends, e.g. ends: [a, s1] (got %d)", len(ls.Ends))
			continue
		}
		var ends [2][]int
		var group [2]bool
		ok := true
		for j, e := range ls.Ends {
			ends[j], group[j] = c.resolve(e)
			if ends[j] == nil {
				c.fail(fmt.Sprintf("%s.ends[%d]", path, j), "%q is not a node, group or switch defined in this spec", e)
				ok = false
			}
		}
		if !ok {
			continue
		}
		if ls.Ends[0] == ls.Ends[1] {
			c.fail(path+".ends", "both ends are %q: a link joins two different vertices", ls.Ends[0])
			continue
		}
		if group[0] && group[1] {
			c.fail(path+".ends", "%q and %q are both groups: link groups through a switch", ls.Ends[0], ls.Ends[1])
			continue
		}
		fwd := override(ls.LinkParams, ls.Forward)
		rev := override(ls.LinkParams, ls.Reverse)
		nerr := c.nfail
		c.checkParams(path+dirSuffix(ls.Forward, ".forward"), &fwd)
		c.checkParams(path+dirSuffix(ls.Reverse, ".reverse"), &rev)
		if c.nfail > nerr {
			continue
		}
		for _, a := range ends[0] {
			for _, b := range ends[1] {
				key := [2]int{min(a, b), max(a, b)}
				if prev, dup := seen[key]; dup {
					c.fail(path, "duplicate link between %s and %s (already links[%d]): merge them", n.names[a], n.names[b], prev)
					continue
				}
				seen[key] = i
				used[a], used[b] = true, true
				id := len(n.Links)
				n.Links = append(n.Links,
					&Link{ID: id, From: n.names[a], To: n.names[b], Reverse: id + 1, Spec: i, Virtual: fwd, Real: fwd.Scale(n.TDF), from: a, to: b},
					&Link{ID: id + 1, From: n.names[b], To: n.names[a], Reverse: id, Spec: i, Virtual: rev, Real: rev.Scale(n.TDF), from: b, to: a})
			}
		}
	}
	if c.nfail > 0 {
		return
	}
	lonely := len(n.Nodes) > 1 || len(n.Switches) > 0
	for v, u := range used {
		if !u && lonely {
			kind := "node"
			if v >= len(n.Nodes) {
				kind = "switch"
			}
			c.fail(kind+"s."+n.names[v], "%s %q has no link: link it (links: [{ends: [%s, ...]}]) or remove it", kind, n.names[v], n.names[v])
		}
	}
}

func dirSuffix(d *DirParams, s string) string {
	if d == nil {
		return ""
	}
	return s
}
