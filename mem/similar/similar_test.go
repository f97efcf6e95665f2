package similar

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func memoryLike(r *rand.Rand) []byte {
	b := make([]byte, 4096)
	for i := 0; i < 4096; i += 8 {
		if r.IntN(3) > 0 {
			v := 0x7f0000000000 + r.Uint64N(1<<20)*16
			for k := 0; k < 6; k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
	}
	return b
}

// index inserts n unrelated pages and returns them; page i has id i.
func index(d Detector, r *rand.Rand, n int) [][]byte {
	var pages [][]byte
	var f Features
	for i := range n {
		p := memoryLike(r)
		d.Features(p, &f)
		d.Insert(&f, uint32(i))
		pages = append(pages, p)
	}
	return pages
}

func lookup(d Detector, p []byte) []uint32 {
	var f Features
	d.Features(p, &f)
	return d.Lookup(&f, 3, nil)
}

func TestFindsEditedPage(t *testing.T) {
	for _, name := range []string{"sketch", "hsd21"} {
		r := rand.New(rand.NewPCG(1, 1))
		d, err := New(name)
		if err != nil {
			t.Fatal(err)
		}
		pages := index(d, r, 500)
		found := 0
		for i, p := range pages {
			q := bytes.Clone(p)
			for range 3 { // a few edits away from the sampled blocks
				q[r.IntN(1024)] ^= 0x55
			}
			if c := lookup(d, q); len(c) > 0 && c[0] == uint32(i) {
				found++
			}
		}
		// hsd21 misses only when an edit hits its blocks (not in [0,1024))
		if found < 480 {
			t.Errorf("%s found %d of 500 edited pages", name, found)
		}
	}
}

// Content shifted by whole words defeats fixed offsets, not anchors.
func TestSketchFindsShiftedPage(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	sk, _ := New("sketch")
	hs, _ := New("hsd21")
	pages := index(sk, r, 300)
	var f Features
	for i, p := range pages {
		hs.Features(p, &f)
		hs.Insert(&f, uint32(i))
	}
	var skFound, hsFound int
	for i, p := range pages {
		q := make([]byte, 4096)
		copy(q[64:], p)
		if c := lookup(sk, q); len(c) > 0 && c[0] == uint32(i) {
			skFound++
		}
		if c := lookup(hs, q); len(c) > 0 && c[0] == uint32(i) {
			hsFound++
		}
	}
	if skFound < 290 || hsFound > 10 {
		t.Fatalf("shifted pages found: sketch %d, hsd21 %d of 300", skFound, hsFound)
	}
}

func TestUnrelatedAndFillPages(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	d, _ := New("sketch")
	index(d, r, 300)
	false_ := 0
	for range 300 {
		if len(lookup(d, memoryLike(r))) > 0 {
			false_++
		}
	}
	if false_ > 15 {
		t.Errorf("%d of 300 unrelated pages got candidates", false_)
	}
	var f Features
	for _, b := range []byte{0, 0xff, 0x41} {
		d.Features(bytes.Repeat([]byte{b}, 4096), &f)
		if f.N != 0 {
			t.Errorf("fill page 0x%02x has %d features", b, f.N)
		}
	}
}

func TestBucketsBounded(t *testing.T) {
	d := newSketch()
	p := memoryLike(rand.New(rand.NewPCG(4, 4)))
	var f Features
	d.Features(p, &f)
	for i := range 100 {
		d.Insert(&f, uint32(i))
	}
	c := d.Lookup(&f, 16, nil)
	if len(c) != sketchWays || c[0] != 99 {
		t.Fatalf("candidates %v: want the %d most recent, newest first", c, sketchWays)
	}
}

func TestNames(t *testing.T) {
	if Names()[0] != DefaultName {
		t.Fatal("default not first")
	}
	for _, n := range Names() {
		if d, err := New(n); err != nil || d.Name() != n {
			t.Fatalf("New(%q) = %v, %v", n, d, err)
		}
	}
	if _, err := New("xyz"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown name: %v", err)
	}
}

func BenchmarkFeatures(b *testing.B) {
	p := memoryLike(rand.New(rand.NewPCG(5, 5)))
	for _, name := range []string{"hsd21", "sketch"} {
		d, _ := New(name)
		b.Run(name, func(b *testing.B) {
			var f Features
			b.SetBytes(4096)
			for b.Loop() {
				d.Features(p, &f)
			}
		})
	}
}

// sketchFeaturesReference is the straightforward form of sketch.Features
// (every window hashed from an array of the page's words); the optimised
// one must pick the very same features.
func sketchFeaturesReference(page []byte) []uint64 {
	var w [512]uint64
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(page[i*8:])
	}
	var hs []uint64
	for i := 0; i+sketchWindow <= len(w); i++ {
		a, b, c, d := w[i], w[i+1], w[i+2], w[i+3]
		if a == b && b == c && c == d {
			continue
		}
		hs = append(hs, windowHash(a, b, c, d))
	}
	slices.Sort(hs)
	hs = slices.Compact(hs)
	return hs[:min(len(hs), sketchK)]
}

func TestSketchFeaturesMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	d := newSketch()
	var f Features
	for i := range 2000 {
		p := memoryLike(r)
		switch i % 4 {
		case 1: // mostly fill, a few distinct windows
			clear(p[:4000])
		case 2: // repeated values: duplicate window hashes
			for k := 8; k < len(p); k += 16 {
				copy(p[k:k+8], p[0:8])
			}
		}
		d.Features(p, &f)
		want := sketchFeaturesReference(p)
		if !slices.Equal(f.H[:f.N], want) {
			t.Fatalf("page %d: features %x, want %x", i, f.H[:f.N], want)
		}
	}
}

func TestRemove(t *testing.T) {
	for _, name := range []string{"sketch", "hsd21", "none"} {
		d, _ := New(name)
		r, ok := d.(Remover)
		if !ok {
			t.Fatalf("%s: no Remove", name)
		}
		rng := rand.New(rand.NewPCG(3, 9))
		pages := index(d, rng, 50)
		var f Features
		for i := range pages {
			d.Features(pages[i], &f)
			r.Remove(&f, uint32(i))
		}
		for i, p := range pages {
			if c := lookup(d, p); len(c) != 0 {
				t.Fatalf("%s: page %d still finds %v after every page was removed", name, i, c)
			}
		}
		if s, ok := d.(*sketch); ok && len(s.index) != 0 {
			t.Fatalf("sketch: %d features left after removing every page", len(s.index))
		}
		// removing one page of two that share features keeps the other
		// (sketch keeps several pages per feature; hsd21 one, the latest)
		if name != "sketch" {
			continue
		}
		d, _ = New(name)
		a := memoryLike(rng)
		b := append([]byte(nil), a...)
		b[100] ^= 1
		d.Features(a, &f)
		d.Insert(&f, 1)
		var fb Features
		d.Features(b, &fb)
		d.Insert(&fb, 2)
		d.(Remover).Remove(&fb, 2)
		if c := lookup(d, a); len(c) != 1 || c[0] != 1 {
			t.Fatalf("%s: after removing 2, lookup finds %v, want [1]", name, c)
		}
	}
}
