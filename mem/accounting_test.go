package mem

import (
	"bytes"
	"github.com/vmux/vmux/mem/internal/pagetest"
	"math/rand/v2"
	"testing"
)

// TestAccountingExact checks every count and byte figure on a corpus small
// enough to work out by hand, in both sharing modes.
func TestAccountingExact(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	x := pagetest.MemoryLike(r) // compressible
	y := pagetest.Random(r)     // incompressible
	y2 := bytes.Clone(y)
	for i := range 10 {
		y2[100+i*300] ^= 0xff // similar to y, still incompressible
	}
	zero := make([]byte, PageSize)
	build := func(cross bool) *Result {
		e, err := NewEngine(Config{CrossDomain: cross})
		if err != nil {
			t.Fatal(err)
		}
		a := e.AddSource("A", "d1")
		b := e.AddSource("B", "d2")
		for _, p := range [][]byte{x, x, zero, y} {
			if err := e.AddPage(a, p); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range [][]byte{x, y2} {
			if err := e.AddPage(b, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.AddZeroPages(b, 3); err != nil {
			t.Fatal(err)
		}
		res, err := e.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	xc := int64(len(mustCompress(t, x)))
	meta := func(units [2]int64) [2]int64 {
		// A: name, extents [x x] [0] [y], 3 non-zero pages; B: [x y2] [hole]
		return [2]int64{
			MetadataPerSource + 1 + 3*MetadataPerExtent + 3*MetadataPerPage + units[0]*MetadataPerUnit,
			MetadataPerSource + 1 + 2*MetadataPerExtent + 2*MetadataPerPage + units[1]*MetadataPerUnit,
		}
	}

	dom := build(false)
	st := dom.Stats
	wantA := KindCounts{Zero: 1, Shared: 1, Compressed: 1, Raw: 1}
	wantB := KindCounts{Zero: 3, Compressed: 1, Raw: 1} // y2 has no reference in d2
	if st.Sources[0].Pages != wantA || st.Sources[1].Pages != wantB {
		t.Fatalf("domains: pages A %+v B %+v", st.Sources[0].Pages, st.Sources[1].Pages)
	}
	m := meta([2]int64{2, 2})
	if st.Sources[0].MetadataBytes != m[0] || st.Sources[1].MetadataBytes != m[1] {
		t.Fatalf("metadata %d %d, want %d %d", st.Sources[0].MetadataBytes, st.Sources[1].MetadataBytes, m[0], m[1])
	}
	if got, want := st.Total.AfterCompressionBytes, 2*xc+2*PageSize; got != want {
		t.Fatalf("domains: payload %d, want %d", got, want)
	}
	if got, want := st.Total.AfterSharingBytes, int64(4*PageSize); got != want {
		t.Fatalf("after sharing %d, want %d", got, want)
	}
	if st.Total.TotalBytes != 9*PageSize || st.Total.StoredBytes != 2*xc+2*PageSize+m[0]+m[1] {
		t.Fatalf("total %d stored %d", st.Total.TotalBytes, st.Total.StoredBytes)
	}
	// KSM: x, y, y2 once each; an rmap item per present page (6; not holes)
	if st.KSM.StoredBytes != 3*PageSize+6*KSMMetadataPerPage || st.IdenticalOnlyStoredBytes != st.KSM.StoredBytes {
		t.Fatalf("KSM stored %d", st.KSM.StoredBytes)
	}
	// after compaction the result holds no more than the stored payload
	held := dom.e.rawArena.size + dom.e.payload.size
	for _, a := range dom.e.compArenas {
		held += a.size
	}
	if held != xc+PageSize+PageSize || dom.e.idx != nil {
		t.Fatalf("result holds %d bytes (want x compressed once, y and y2 raw: %d), index released: %v",
			held, xc+2*PageSize, dom.e.idx == nil)
	}
	if enc := dom.Page(1, 0); enc.Kind != KindCompressed {
		t.Fatalf("x in d2 is %s: must not be shared across domains", enc.Kind)
	}

	cross := build(true)
	cs := cross.Stats
	wantA = KindCounts{Zero: 1, Shared: 1, Compressed: 1, Raw: 1} // y is a reference: raw
	wantB = KindCounts{Zero: 3, Shared: 1, Patched: 1}
	if cs.Sources[0].Pages != wantA || cs.Sources[1].Pages != wantB {
		t.Fatalf("cross: pages A %+v B %+v", cs.Sources[0].Pages, cs.Sources[1].Pages)
	}
	enc := cross.Page(1, 1)
	if enc.Kind != KindPatched || enc.Ref != (PageRef{Source: 0, Page: 3}) || len(enc.Data) > 64 {
		t.Fatalf("y2: %s against %v, %d bytes", enc.Kind, enc.Ref, len(enc.Data))
	}
	if enc := cross.Page(1, 0); enc.Kind != KindShared || enc.Ref != (PageRef{Source: 0, Page: 0}) {
		t.Fatalf("x in B: %s %v", enc.Kind, enc.Ref)
	}
	pl := int64(len(enc.Data))
	if got, want := cs.Total.AfterCompressionBytes, xc+PageSize+pl; got != want {
		t.Fatalf("cross: payload %d, want %d", got, want)
	}
	if cs.Total.AfterPatchingBytes != 2*PageSize+pl || cs.Patching.PatchesKept != 1 || cs.Patching.References != 1 {
		t.Fatalf("cross: after patching %d, patching %+v", cs.Total.AfterPatchingBytes, cs.Patching)
	}
	// each mode's alternate is the other mode's total
	if st.Alternate != cs.Total || cs.Alternate != st.Total {
		t.Fatalf("alternates differ:\n%+v\n%+v\n%+v\n%+v", st.Alternate, cs.Total, cs.Alternate, st.Total)
	}
	if cs.SavingsRatio <= st.SavingsRatio {
		t.Fatalf("cross-domain ratio %.3f not above per-domain %.3f", cs.SavingsRatio, st.SavingsRatio)
	}
}

func mustCompress(t *testing.T, p []byte) []byte {
	t.Helper()
	e, _ := NewEngine(Config{})
	out, err := e.codec.Compress(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
