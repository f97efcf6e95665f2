package similar

import (
	"encoding/binary"
	"math/bits"
)

const (
	sketchK      = 4 // features per page
	sketchWindow = 4 // words (32 bytes) per window
	sketchWays   = 4 // pages remembered per feature
)

// sketch is the content-defined bottom-k detector (see the package doc).
type sketch struct {
	index   map[uint64]uint32 // feature -> bucket number
	buckets []bucket
	freeB   []uint32    // buckets emptied by Remove, for reuse
	tally   []candCount // scratch for Lookup
}

// bucket remembers the last sketchWays pages that had one feature.
type bucket struct {
	ids  [sketchWays]uint32
	n    uint8
	next uint8 // ring position of the next insert once full
}

type candCount struct {
	id    uint32
	count int
}

// better orders candidates: more shared features, then the newer page.
func (c candCount) better(o candCount) bool {
	if c.count != o.count {
		return c.count > o.count
	}
	return c.id > o.id
}

func newSketch() *sketch { return &sketch{index: map[uint64]uint32{}} }

func (*sketch) Name() string { return "sketch" }

// windowHash mixes four words; the constants are odd 64-bit primes. (A
// cheaper scheme, one multiplication per word combined by rotations, found
// fewer candidates on real process memory.)
func windowHash(a, b, c, d uint64) uint64 {
	x := a*0x9E3779B185EBCA87 + b*0xC2B2AE3D27D4EB4F
	y := c*0x165667B19E3779F9 + d*0x27D4EB2F165667C5
	h := bits.RotateLeft64(x, 31) ^ y
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 32
	return h
}

func (*sketch) Features(page []byte, f *Features) {
	page = page[:4096]
	var best [sketchK]uint64 // ascending; valid up to n
	n := 0
	// The window slides one word at a time: a, b, c, d are its words and
	// each iteration loads only the next one.
	b := binary.LittleEndian.Uint64(page[0:8])
	c := binary.LittleEndian.Uint64(page[8:16])
	d := binary.LittleEndian.Uint64(page[16:24])
	for off := 24; off+8 <= len(page); off += 8 {
		a := b
		b, c = c, d
		d = binary.LittleEndian.Uint64(page[off : off+8])
		if a == b && b == c && c == d {
			continue // fill pattern: matches unrelated pages
		}
		h := windowHash(a, b, c, d)
		if n == sketchK && h >= best[sketchK-1] {
			continue
		}
		n = insertBest(&best, n, h)
	}
	copy(f.H[:], best[:n])
	f.N = n
}

// insertBest inserts h into the ascending best[:n] unless present, keeping
// the sketchK smallest, and returns the new count.
func insertBest(best *[sketchK]uint64, n int, h uint64) int {
	for k := 0; k < n; k++ {
		if best[k] == h {
			return n
		}
	}
	j := n
	if j == sketchK {
		j--
	}
	for j > 0 && best[j-1] > h {
		best[j] = best[j-1]
		j--
	}
	best[j] = h
	if n < sketchK {
		n++
	}
	return n
}

func (d *sketch) Lookup(f *Features, max int, dst []uint32) []uint32 {
	d.tally = d.tally[:0]
	for k := 0; k < f.N; k++ {
		bi, ok := d.index[f.H[k]]
		if !ok {
			continue
		}
		b := &d.buckets[bi]
		for _, id := range b.ids[:b.n] {
			found := false
			for t := range d.tally {
				if d.tally[t].id == id {
					d.tally[t].count++
					found = true
					break
				}
			}
			if !found {
				d.tally = append(d.tally, candCount{id, 1})
			}
		}
	}
	// most shared features first; among equals the most recent page
	t := d.tally
	for i := 1; i < len(t); i++ {
		for j := i; j > 0 && t[j].better(t[j-1]); j-- {
			t[j], t[j-1] = t[j-1], t[j]
		}
	}
	for i := 0; i < len(d.tally) && i < max; i++ {
		dst = append(dst, d.tally[i].id)
	}
	return dst
}

func (d *sketch) Insert(f *Features, id uint32) {
	for k := 0; k < f.N; k++ {
		bi, ok := d.index[f.H[k]]
		if !ok {
			if n := len(d.freeB); n > 0 {
				bi = d.freeB[n-1]
				d.freeB = d.freeB[:n-1]
				d.buckets[bi] = bucket{}
			} else {
				bi = uint32(len(d.buckets))
				d.buckets = append(d.buckets, bucket{})
			}
			d.index[f.H[k]] = bi
		}
		b := &d.buckets[bi]
		if int(b.n) < sketchWays {
			b.ids[b.n] = id
			b.n++
			continue
		}
		b.ids[b.next] = id
		b.next = (b.next + 1) % sketchWays
	}
}

// Remove forgets id under each of its features; a bucket left empty is
// dropped with its feature and reused, so the index stays as large as the
// pages it holds.
func (d *sketch) Remove(f *Features, id uint32) {
	for k := 0; k < f.N; k++ {
		bi, ok := d.index[f.H[k]]
		if !ok {
			continue
		}
		b := &d.buckets[bi]
		for i := 0; i < int(b.n); i++ {
			if b.ids[i] != id {
				continue
			}
			// keep the ring's order: shift the later entries down
			copy(b.ids[i:b.n], b.ids[i+1:b.n])
			b.n--
			if b.next > uint8(i) {
				b.next--
			}
			if int(b.next) >= int(b.n) {
				b.next = 0
			}
			break
		}
		if b.n == 0 {
			delete(d.index, f.H[k])
			d.freeB = append(d.freeB, bi)
		}
	}
}
