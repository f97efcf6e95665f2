package pageindex

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func page(r *rand.Rand) []byte {
	b := make([]byte, PageSize)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func TestInsertSharesIdentical(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	x := New()
	var pages [][]byte
	for range 5000 { // forces several grows and slabs
		pages = append(pages, page(r))
	}
	for i, p := range pages {
		id, added, err := x.Insert(p)
		if err != nil || !added || int(id) != i {
			t.Fatalf("page %d: id %d added %v err %v", i, id, added, err)
		}
	}
	for i, p := range pages {
		q := bytes.Clone(p)
		id, added, err := x.Insert(q)
		if err != nil || added || int(id) != i {
			t.Fatalf("duplicate of %d: id %d added %v err %v", i, id, added, err)
		}
		if !bytes.Equal(x.Content(id), p) {
			t.Fatalf("content %d differs", id)
		}
	}
	if x.Len() != len(pages) {
		t.Fatalf("Len %d", x.Len())
	}
	if m := x.MemoryBytes(); m < int64(len(pages))*PageSize || m > int64(len(pages))*PageSize*2 {
		t.Fatalf("MemoryBytes %d for %d pages", m, len(pages))
	}
}

// Two different pages with the same hash must not be shared.
func TestHashCollisionConfirmed(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	x := New()
	a, b := page(r), page(r)
	ida, _, _ := x.InsertHash(a, 42)
	idb, added, err := x.InsertHash(b, 42)
	if err != nil || !added || ida == idb {
		t.Fatalf("colliding pages shared: %d %d added %v err %v", ida, idb, added, err)
	}
	if x.Collisions != 1 {
		t.Fatalf("Collisions = %d, want 1", x.Collisions)
	}
	if id, added, _ := x.InsertHash(bytes.Clone(b), 42); added || id != idb {
		t.Fatalf("b again: id %d added %v", id, added)
	}
}

func TestIsZero(t *testing.T) {
	z := make([]byte, PageSize)
	if !IsZero(z) || Hash(z) != ZeroHash {
		t.Fatal("zero page not zero")
	}
	for _, i := range []int{0, 1, 2047, 4095} {
		z[i] = 1
		if IsZero(z) {
			t.Fatalf("byte %d set, still zero", i)
		}
		z[i] = 0
	}
	if !IsZero(make([]byte, 3*PageSize+5)) || IsZero(append(make([]byte, 2*PageSize), 1)) {
		t.Fatal("multi-page IsZero wrong")
	}
}

func BenchmarkHash(b *testing.B) {
	p := page(rand.New(rand.NewPCG(3, 3)))
	b.SetBytes(PageSize)
	for b.Loop() {
		_ = Hash(p)
	}
}

// BenchmarkIndexDuplicates: hash + index + byte confirmation of pages already
// present (no copy), beside bytes.Equal of the same pages as a baseline.
func BenchmarkIndexDuplicates(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	x := New()
	var pages [][]byte
	for range 4096 {
		p := page(r)
		pages = append(pages, p)
		_, _, _ = x.Insert(p)
	}
	b.Run("index", func(b *testing.B) {
		b.SetBytes(PageSize)
		i := 0
		for b.Loop() {
			_, _, _ = x.Insert(pages[i&4095])
			i++
		}
	})
	b.Run("memcmp-baseline", func(b *testing.B) {
		b.SetBytes(PageSize)
		i := 0
		for b.Loop() {
			_ = bytes.Equal(pages[i&4095], x.Content(uint32(i&4095)))
			i++
		}
	})
}

// External contents are indexed without a copy and confirmed through Load.
func TestExternal(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	var pages [][]byte
	x := New()
	loads := 0
	x.Load = func(id ID, buf []byte) ([]byte, error) {
		loads++
		return pages[id], nil
	}
	for range 600 {
		p := page(r)
		pages = append(pages, p)
		if _, added, err := x.InsertHashExternal(p, Hash(p)); err != nil || !added {
			t.Fatal(added, err)
		}
	}
	if len(x.slabs) != 0 {
		t.Fatalf("%d slabs for external contents", len(x.slabs))
	}
	stored := page(r)
	sid, _, _ := x.Insert(stored)
	for i, p := range pages {
		id, added, err := x.InsertHash(bytes.Clone(p), Hash(p))
		if err != nil || added || int(id) != i {
			t.Fatalf("duplicate of external %d: id %d added %v err %v", i, id, added, err)
		}
	}
	if loads != len(pages) {
		t.Fatalf("%d loads, want one per confirmation (%d)", loads, len(pages))
	}
	if got, _ := x.Read(sid, nil); !bytes.Equal(got, stored) || x.Content(0) != nil {
		t.Fatal("Read/Content of stored and external ids")
	}
	// a failing Load is an error, not a silent new content
	x.Load = func(ID, []byte) ([]byte, error) { return nil, errors.New("gone") }
	if _, _, err := x.InsertHash(pages[3], Hash(pages[3])); err == nil {
		t.Fatal("failing Load ignored")
	}
}
