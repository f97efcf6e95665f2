package vdso

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vmux/vmux/rt/vclock"
)

// TestHarnessMatchesGoExactly points the per-process page at a fake real
// clock in the harness, stores random parameters, and requires the C
// replacement's reading to equal vclock's Params.Virt to the nanosecond,
// for every wall clock, every kind of factor, paused or not, and real
// readings before and after the anchors.
func TestHarnessMatchesGoExactly(t *testing.T) {
	clk := newTestClock(t, "1")
	h := startHarness(t, clk)
	if r := h.line("fake 1"); r != "ok" {
		t.Fatalf("fake 1: %s", r)
	}
	defer h.line("fake 0")
	r := rand.New(rand.NewPCG(11, 12))
	tdfs := []vclock.TDF{{Num: 1, Den: 1}, {Num: 10, Den: 1}, {Num: 1, Den: 2}, {Num: 1, Den: 3}, {Num: 5, Den: 2},
		vclock.MinTDF, vclock.MaxTDF, {Num: 999999937, Den: 1000000}, {Num: 7, Den: 999}}
	checked := 0
	for set := range 300 {
		k := tdfs[r.IntN(len(tdfs))]
		p := vclock.Params{TDF: k, Share: vclock.FullShare, Mult: k.Mult(), CPUMult: vclock.CPUMult(vclock.FullShare, k)}
		if set%5 == 4 {
			p.Paused, p.Mult = true, 0
		}
		for id := range p.Bases {
			p.Bases[id] = vclock.Base{Real: r.Int64N(1<<61) - 1<<60, Virt: r.Int64N(1<<61) - 1<<60}
		}
		if err := clk.Store(p); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			id := wallIDs[r.IntN(len(wallIDs))]
			// Deltas from 0 to 2^50 ns (13 days) either way, so that the
			// virtual value stays inside int64 at k = 1/1000 (C does not
			// saturate; Go does).
			delta := r.Int64N(1<<(r.IntN(50)+1)) * (1 - 2*r.Int64N(2))
			real := p.Bases[id].Real + delta
			row := h.do(fmt.Sprintf("x %d %d", id, real), 1)[0]
			if want := p.Virt(id, real); row[0] != 0 || row[1] != want {
				t.Fatalf("k=%v paused=%v %v real %d (base %+v): C reads %d (ret %d), Go %d",
					k, p.Paused, id, real, p.Bases[id], row[1], row[0], want)
			}
			checked++
		}
		// CPU-time clocks pass the (fake) real reading through.
		if row := h.do(fmt.Sprintf("x %d %d", vclock.ProcessCPUTime, 123456789), 1)[0]; row[1] != 123456789 {
			t.Fatalf("CPU clock changed by the replacement: %v", row)
		}
	}
	t.Logf("%d readings equal to the nanosecond", checked)
}
