package store

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/vmux/vmux/mem/source"
)

// Source is one source as recorded in a store.
type Source struct {
	Name     string
	Kind     source.Kind
	Domain   string
	FileSize int64 // exact size of a source file (0 for processes)
	Pages    uint64
	Regions  []source.Region
	Skipped  []source.Skip
	Residue  []Residue
	runs     []run
}

// Residue is a run of source-file bytes that are not memory, stored raw.
type Residue struct {
	FileOff int64
	Len     uint64
	off     uint64 // in the store
	sum     uint32
}

// run maps pages [first, first+n) of a source to entries [entry, entry+n),
// or to nothing (entry == zeroRun): all zero.
type run struct {
	first, n, entry uint64
}

// index is everything between the entry table and the footer.
type index struct {
	codecs    []string
	detector  string
	codec     string
	cross     bool
	sources   []Source
	blockSums []uint64
}

type wbuf struct{ b []byte }

func (w *wbuf) u8(v uint8)   { w.b = append(w.b, v) }
func (w *wbuf) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *wbuf) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *wbuf) str(s string) {
	if len(s) > maxString {
		s = s[:maxString]
	}
	w.u32(uint32(len(s)))
	w.b = append(w.b, s...)
}

func (x *index) encode() []byte {
	var w wbuf
	w.u32(uint32(len(x.codecs)))
	for _, c := range x.codecs {
		w.str(c)
	}
	w.str(x.detector)
	w.str(x.codec)
	if x.cross {
		w.u8(1)
	} else {
		w.u8(0)
	}
	w.u32(uint32(len(x.sources)))
	for _, s := range x.sources {
		w.str(s.Name)
		w.str(string(s.Kind))
		w.str(s.Domain)
		w.u64(uint64(s.FileSize))
		w.u64(s.Pages)
		w.u32(uint32(len(s.Regions)))
		for _, r := range s.Regions {
			w.str(r.Name)
			w.u64(r.Start)
			w.u64(r.Len)
			w.str(r.Perms)
			w.u64(uint64(r.FileOff))
			w.u64(r.FileLen)
		}
		w.u32(uint32(len(s.Skipped)))
		for _, k := range s.Skipped {
			w.u64(k.Start)
			w.u64(k.Len)
			w.str(k.Name)
			w.str(k.Reason)
		}
		w.u32(uint32(len(s.Residue)))
		for _, r := range s.Residue {
			w.u64(uint64(r.FileOff))
			w.u64(r.Len)
			w.u64(r.off)
			w.u32(r.sum)
		}
		w.u32(uint32(len(s.runs)))
		for _, r := range s.runs {
			w.u64(r.first)
			w.u64(r.n)
			w.u64(r.entry)
		}
	}
	w.u32(uint32(len(x.blockSums)))
	for _, s := range x.blockSums {
		w.u64(s)
	}
	return w.b
}

// rbuf decodes the index; the first error sticks and later reads return
// zero values, so decode checks once at the end (and counts before
// allocating, so a corrupt count cannot make it allocate much).
type rbuf struct {
	b   []byte
	err error
}

func (r *rbuf) fail(what string) {
	if r.err == nil {
		r.err = corrupt("index", "%s at %d bytes from the end", what, len(r.b))
	}
}

func (r *rbuf) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail("truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *rbuf) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *rbuf) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *rbuf) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *rbuf) str() string { return string(r.take(int(r.u32()))) }

// count reads a count of items of at least min bytes each, checking that
// they can fit in what is left.
func (r *rbuf) count(min int) int {
	n := r.u32()
	if r.err == nil && uint64(n)*uint64(min) > uint64(len(r.b)) {
		r.fail(fmt.Sprintf("count %d too large", n))
		return 0
	}
	return int(n)
}

func decodeIndex(b []byte) (*index, error) {
	r := &rbuf{b: b}
	x := &index{}
	for i, n := 0, r.count(4); i < n; i++ {
		x.codecs = append(x.codecs, r.str())
	}
	x.detector, x.codec, x.cross = r.str(), r.str(), r.u8() == 1
	for i, n := 0, r.count(40); i < n && r.err == nil; i++ {
		var s Source
		s.Name, s.Kind, s.Domain = r.str(), source.Kind(r.str()), r.str()
		fs := r.u64()
		if fs > math.MaxInt64 {
			r.fail("file size")
		}
		s.FileSize = int64(fs)
		s.Pages = r.u64()
		for j, m := 0, r.count(40); j < m && r.err == nil; j++ {
			var g source.Region
			g.Name, g.Start, g.Len, g.Perms = r.str(), r.u64(), r.u64(), r.str()
			g.FileOff, g.FileLen = int64(r.u64()), r.u64()
			s.Regions = append(s.Regions, g)
		}
		for j, m := 0, r.count(24); j < m && r.err == nil; j++ {
			var k source.Skip
			k.Start, k.Len, k.Name, k.Reason = r.u64(), r.u64(), r.str(), r.str()
			s.Skipped = append(s.Skipped, k)
		}
		for j, m := 0, r.count(28); j < m && r.err == nil; j++ {
			var e Residue
			e.FileOff, e.Len, e.off, e.sum = int64(r.u64()), r.u64(), r.u64(), r.u32()
			s.Residue = append(s.Residue, e)
		}
		for j, m := 0, r.count(24); j < m && r.err == nil; j++ {
			s.runs = append(s.runs, run{r.u64(), r.u64(), r.u64()})
		}
		x.sources = append(x.sources, s)
	}
	for i, n := 0, r.count(8); i < n && r.err == nil; i++ {
		x.blockSums = append(x.blockSums, r.u64())
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return x, nil
}
