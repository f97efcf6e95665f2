package topology

import "testing"

// TestShortestPathTieBreak: two equal-length paths a-s1-s3-b and a-s2-s3-b;
// the tie breaks on names (s1 before s2), and a longer path is never taken.
func TestShortestPathTieBreak(t *testing.T) {
	n := mustCompile(t, `
name: r
nodes: {a: {}, b: {}}
switches: [s3, s2, s1, s4]
links:
  - {ends: [a, s2]}
  - {ends: [a, s1]}
  - {ends: [s1, s3]}
  - {ends: [s2, s3]}
  - {ends: [s3, b]}
  - {ends: [a, s4]}
  - {ends: [s4, s1]}
`)
	r, err := n.RouteByName("a", "b")
	if err != nil {
		t.Fatal(err)
	}
	var hops []string
	for _, id := range r {
		hops = append(hops, n.Links[id].From+">"+n.Links[id].To)
	}
	want := []string{"a>s1", "s1>s3", "s3>b"}
	if len(hops) != len(want) {
		t.Fatalf("route %v, want %v", hops, want)
	}
	for i := range want {
		if hops[i] != want[i] {
			t.Fatalf("route %v, want %v", hops, want)
		}
	}
	// The reverse route is symmetric here.
	r2, _ := n.RouteByName("b", "a")
	if len(r2) != 3 || n.Links[r2[2]].To != "a" || n.Links[r2[1]].To != "s1" {
		t.Fatalf("reverse route %v", r2)
	}
	for _, id := range r {
		l := n.Links[id]
		if rl := n.Links[l.Reverse]; rl.From != l.To || rl.To != l.From || rl.Reverse != l.ID {
			t.Fatalf("link %d reverse %d mismatched", l.ID, l.Reverse)
		}
	}
}
