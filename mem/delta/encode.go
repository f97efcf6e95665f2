package delta

import (
	"encoding/binary"
	"math/bits"
)

const (
	tableBits = 11
	// Anchors sit at 8-byte-aligned reference offsets, and only aligned
	// target positions look them up: moved content is found at word
	// granularity (what process memory has), at 1/8 of the lookups.
	anchorStep = 8
	minRep     = 4 // shortest copy at the current displacement
	minMatch   = 8 // shortest copy found through the anchor table
)

// Encoder holds anchor tables; reuse one per goroutine to avoid
// allocation. The zero value is ready to use.
type Encoder struct {
	table anchors // Encode's
	keyed []keyed // EncodeKeyed's, the last cacheWays references
	next  int     // keyed slot to replace next
}

// anchors maps the hash of 8 reference bytes to their position + 1 (0:
// empty).
type anchors [1 << tableBits]uint16

type keyed struct {
	key   uint64
	valid bool
	t     anchors
}

// cacheWays: on real process memory half of the references a page is
// encoded against were among the last 8 used.
const cacheWays = 8

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

func hash8(v uint64) uint32 { return uint32((v * 0x9E3779B185EBCA87) >> (64 - tableBits)) }

// matchLen counts equal leading bytes of a and b.
func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	a, b = a[:n], b[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:i+8]) ^ binary.LittleEndian.Uint64(b[i:i+8]); x != 0 {
			return i + bits.TrailingZeros64(x)>>3
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}

const (
	lo7 = 0x7f7f7f7f7f7f7f7f
	hi1 = 0x8080808080808080
)

// nextRun, given x (8 target bytes XOR the reference bytes at the current
// displacement) whose low minRep bytes differ, returns the first k in 1..7
// where minRep equal bytes start (k <= 4) or where equal bytes reach the end
// of x (k >= 5: the run may go on), or 8 if there is none. No position
// before it has a minRep-byte match.
func nextRun(x uint64) int {
	eq := ^(((x & lo7) + lo7) | x) & hi1 // 0x80 in each equal byte
	run := eq & (eq >> 8) & (eq >> 16) & (eq >> 24)
	s7 := eq & (0x80 << 56)
	s6 := eq & (s7 >> 8)
	s5 := eq & (s6 >> 8)
	cand := run | s5 | s6 | s7
	if cand == 0 {
		return 8
	}
	return bits.TrailingZeros64(cand) >> 3
}

func (t *anchors) index(ref []byte) {
	clear(t[:])
	if len(ref) > 0xFFFE {
		ref = ref[:0xFFFE] // positions are uint16
	}
	for p := 0; p+8 <= len(ref); p += anchorStep {
		t[hash8(load64(ref, p))] = uint16(p + 1)
	}
}

// Encode appends to dst[:0] a patch that rebuilds target from ref. If the
// patch would be longer than limit bytes (limit <= 0: no limit) it stops
// early and returns ErrTooLarge.
func (e *Encoder) Encode(dst, ref, target []byte, limit int) ([]byte, error) {
	return e.encode(dst, ref, target, limit, nil, false, 0)
}

// EncodeKeyed is Encode against a reference the caller names by key (a page
// number, say): the anchor table built for it is kept for the next calls
// with the same key, for the last few keys. A key must always name the same
// reference bytes; a table left from other bytes costs patch size (anchors
// are checked against the reference before use), never correctness.
func (e *Encoder) EncodeKeyed(dst, ref, target []byte, limit int, key uint64) ([]byte, error) {
	if e.keyed == nil {
		e.keyed = make([]keyed, cacheWays)
	}
	for i := range e.keyed {
		if k := &e.keyed[i]; k.valid && k.key == key {
			return e.encode(dst, ref, target, limit, &k.t, true, key)
		}
	}
	return e.encode(dst, ref, target, limit, nil, true, key)
}

// encode uses t, an anchor table already built for ref, or if t is nil
// builds one on the first need: into the next keyed slot if keyed, else
// into e.table.
func (e *Encoder) encode(dst, ref, target []byte, limit int, t *anchors, keyed bool, key uint64) ([]byte, error) {
	indexed := t != nil
	if limit <= 0 {
		limit = int(^uint(0) >> 1)
	}
	out := binary.AppendUvarint(dst[:0], uint64(len(target)))
	n := len(target)
	disp := 0 // ref offset - target offset of the current copy run
	lit := 0  // start of pending literal bytes
	misses := 0
	for i := 0; i+minRep <= n; {
		r := i + disp
		m := 0
		if r >= 0 && r+minRep <= len(ref) && load32(target, i) == load32(ref, r) {
			m = matchLen(target[i:], ref[r:])
		} else if i+minMatch <= n && i%anchorStep == 0 {
			if !indexed {
				t = e.build(ref, keyed, key)
				indexed = true
			}
			if p := int(t[hash8(load64(target, i))]) - 1; p >= 0 && p+8 <= len(ref) && load64(ref, p) == load64(target, i) {
				r = p
				m = matchLen(target[i:], ref[r:])
			}
		}
		if m == 0 && misses < 8 && r >= 0 && r+8 <= len(ref) && i+8 <= n {
			// The next positions, up to the next aligned one, are misses
			// too unless minRep bytes match there: skip them at once, as
			// single steps would (misses stays below 16).
			x := load64(target, i) ^ load64(ref, r)
			s := min(nextRun(x), anchorStep-i%anchorStep)
			misses += s
			i += s
			if len(out)+i-lit > limit {
				return out[:0], ErrTooLarge
			}
			continue
		}
		if m == 0 {
			misses++
			i += 1 + misses>>4
			// pending literals will cost at least their bytes
			if len(out)+i-lit > limit {
				return out[:0], ErrTooLarge
			}
			continue
		}
		misses = 0
		for i > lit && r > 0 && target[i-1] == ref[r-1] {
			i--
			r--
			m++
		}
		out = appendLiteral(out, target[lit:i])
		// most copies are short and keep the displacement: two bytes
		if v, d := uint64(m)<<1|1, int64(r-i-disp); v < 0x80 && d > -64 && d < 64 {
			out = append(out, byte(v), byte(d<<1^d>>63))
		} else {
			out = binary.AppendUvarint(out, v)
			out = binary.AppendVarint(out, d)
		}
		disp = r - i
		i += m
		lit = i
		if len(out) > limit {
			return out[:0], ErrTooLarge
		}
	}
	out = appendLiteral(out, target[lit:])
	if len(out) > limit {
		return out[:0], ErrTooLarge
	}
	return out, nil
}

// build indexes ref into e.table, or into the next keyed slot under key.
func (e *Encoder) build(ref []byte, keyed bool, key uint64) *anchors {
	if !keyed {
		e.table.index(ref)
		return &e.table
	}
	k := &e.keyed[e.next]
	e.next = (e.next + 1) % len(e.keyed)
	k.key, k.valid = key, true
	k.t.index(ref)
	return &k.t
}

func appendLiteral(out, b []byte) []byte {
	if len(b) == 0 {
		return out
	}
	if len(b) < 0x40 {
		out = append(out, byte(len(b)<<1))
	} else {
		out = binary.AppendUvarint(out, uint64(len(b))<<1)
	}
	return append(out, b...)
}

// Encode is Encoder.Encode with a fresh Encoder (allocates 4 KiB).
func Encode(dst, ref, target []byte, limit int) ([]byte, error) {
	var e Encoder
	return e.Encode(dst, ref, target, limit)
}
