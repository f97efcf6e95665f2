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

// Encoder holds the anchor table; reuse one per goroutine to avoid
// allocation. The zero value is ready to use.
type Encoder struct {
	table [1 << tableBits]uint16 // reference position + 1; 0 = empty
}

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

func hash8(v uint64) uint32 { return uint32((v * 0x9E3779B185EBCA87) >> (64 - tableBits)) }

// matchLen counts equal leading bytes of a and b.
func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := load64(a, i) ^ load64(b, i); x != 0 {
			return i + bits.TrailingZeros64(x)>>3
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}

func (e *Encoder) index(ref []byte) {
	clear(e.table[:])
	if len(ref) > 0xFFFE {
		ref = ref[:0xFFFE] // positions are uint16
	}
	for p := 0; p+8 <= len(ref); p += anchorStep {
		e.table[hash8(load64(ref, p))] = uint16(p + 1)
	}
}

// Encode appends to dst[:0] a patch that rebuilds target from ref. If the
// patch would be longer than limit bytes (limit <= 0: no limit) it stops
// early and returns ErrTooLarge.
func (e *Encoder) Encode(dst, ref, target []byte, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = int(^uint(0) >> 1)
	}
	out := binary.AppendUvarint(dst[:0], uint64(len(target)))
	n := len(target)
	indexed := false
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
				e.index(ref)
				indexed = true
			}
			if p := int(e.table[hash8(load64(target, i))]) - 1; p >= 0 && load64(ref, p) == load64(target, i) {
				r = p
				m = matchLen(target[i:], ref[r:])
			}
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
		out = binary.AppendUvarint(out, uint64(m)<<1|1)
		out = binary.AppendVarint(out, int64(r-i-disp))
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

func appendLiteral(out, b []byte) []byte {
	if len(b) == 0 {
		return out
	}
	out = binary.AppendUvarint(out, uint64(len(b))<<1)
	return append(out, b...)
}

// Encode is Encoder.Encode with a fresh Encoder (allocates 4 KiB).
func Encode(dst, ref, target []byte, limit int) ([]byte, error) {
	var e Encoder
	return e.Encode(dst, ref, target, limit)
}
