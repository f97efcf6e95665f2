package topology

import "sort"

// route computes, for every node, the shortest-path tree (in hops) over
// the vertices. Only switches forward: a node is a leaf of every tree but
// its own. Neighbours are visited in name order, so ties break the same
// way on every run. Every pair of nodes must be joined.
func (c *compiler) route() {
	n := c.net
	nv := len(n.names)
	adj := make([][]int, nv) // vertex -> outgoing link IDs, by neighbour name
	for _, l := range n.Links {
		adj[l.from] = append(adj[l.from], l.ID)
	}
	for v := range adj {
		sort.Slice(adj[v], func(i, j int) bool {
			return n.names[n.Links[adj[v][i]].to] < n.names[n.Links[adj[v][j]].to]
		})
	}
	n.parent = make([][]int32, len(n.Nodes))
	queue := make([]int, 0, nv)
	for src := range n.Nodes {
		par := make([]int32, nv)
		for i := range par {
			par[i] = -1
		}
		seen := make([]bool, nv)
		seen[src] = true
		queue = append(queue[:0], src)
		for len(queue) > 0 {
			v := queue[0]
			queue = queue[1:]
			if v != src && v < len(n.Nodes) {
				continue // nodes do not forward
			}
			for _, id := range adj[v] {
				w := n.Links[id].to
				if !seen[w] {
					seen[w] = true
					par[w] = int32(id)
					queue = append(queue, w)
				}
			}
		}
		n.parent[src] = par
		for dst := range n.Nodes {
			if dst != src && par[dst] < 0 && src < dst {
				c.fail("links", "nodes %q and %q are not connected (only switches forward): join them through a switch", n.Nodes[src].Name, n.Nodes[dst].Name)
				return
			}
		}
	}
}
