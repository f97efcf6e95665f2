package similar

import "github.com/zeebo/xxh3"

// The paper's fixed block offsets are "random but fixed"; these two were
// drawn once and are kept so results are reproducible.
const (
	hsdBlock = 64
	hsdOff0  = 1352
	hsdOff1  = 3016
)

// hsd21 is HashSimilarityDetector(2,1): two 64-byte blocks at fixed offsets,
// each hash indexing its own table with one candidate (the latest) per entry.
type hsd21 struct {
	tab [2]map[uint64]uint32
}

func newHSD21() *hsd21 {
	return &hsd21{tab: [2]map[uint64]uint32{{}, {}}}
}

func (*hsd21) Name() string { return "hsd21" }

func (*hsd21) Features(page []byte, f *Features) {
	f.H[0] = xxh3.Hash(page[hsdOff0 : hsdOff0+hsdBlock])
	f.H[1] = xxh3.Hash(page[hsdOff1 : hsdOff1+hsdBlock])
	f.N = 2
}

func (d *hsd21) Lookup(f *Features, max int, dst []uint32) []uint32 {
	if f.N != 2 || max <= 0 {
		return dst
	}
	c0, ok0 := d.tab[0][f.H[0]]
	c1, ok1 := d.tab[1][f.H[1]]
	switch {
	case ok0 && ok1 && c0 == c1:
		return append(dst, c0)
	case ok0 && ok1:
		dst = append(dst, c0)
		if max > 1 {
			dst = append(dst, c1)
		}
		return dst
	case ok0:
		return append(dst, c0)
	case ok1:
		return append(dst, c1)
	}
	return dst
}

func (d *hsd21) Insert(f *Features, id uint32) {
	if f.N != 2 {
		return
	}
	d.tab[0][f.H[0]] = id
	d.tab[1][f.H[1]] = id
}

// Remove forgets id under f where it is still the entry's candidate.
func (d *hsd21) Remove(f *Features, id uint32) {
	if f.N != 2 {
		return
	}
	for k := 0; k < 2; k++ {
		if c, ok := d.tab[k][f.H[k]]; ok && c == id {
			delete(d.tab[k], f.H[k])
		}
	}
}
