package delta

import (
	"encoding/binary"
	"fmt"
)

// Decode rebuilds into dst the target that patch encodes against ref. dst
// must have exactly the target's length.
func Decode(dst, ref, patch []byte) error {
	tl, k := binary.Uvarint(patch)
	if k <= 0 {
		return fmt.Errorf("decode patch header: %w", ErrCorrupt)
	}
	if tl != uint64(len(dst)) {
		return fmt.Errorf("decode patch: target of %d bytes, buffer of %d: %w", tl, len(dst), ErrCorrupt)
	}
	// Same-size pages: start from the reference, so the commonest op, a
	// copy at displacement 0, costs no memory traffic at all.
	same := len(ref) == len(dst)
	if same {
		copy(dst, ref)
	}
	p := k
	pos := 0
	disp := int64(0)
	limit := int64(len(ref) + len(dst))
	for p < len(patch) {
		var v uint64
		if b := patch[p]; b < 0x80 { // most ops are short: one byte
			v = uint64(b)
			p++
		} else {
			var k int
			if v, k = binary.Uvarint(patch[p:]); k <= 0 {
				return fmt.Errorf("decode patch op at byte %d: %w", p, ErrCorrupt)
			}
			p += k
		}
		l := v >> 1
		if l == 0 || l > uint64(len(dst)-pos) {
			return fmt.Errorf("decode patch op at byte %d: length %d with %d bytes left: %w", p, l, len(dst)-pos, ErrCorrupt)
		}
		n := int(l)
		if v&1 == 0 {
			if n > len(patch)-p {
				return fmt.Errorf("decode patch literal at byte %d: truncated: %w", p, ErrCorrupt)
			}
			copy(dst[pos:pos+n], patch[p:p+n])
			p += n
			pos += n
			continue
		}
		if p >= len(patch) {
			return fmt.Errorf("decode patch copy at byte %d: truncated: %w", p, ErrCorrupt)
		}
		var d int64
		if b := patch[p]; b < 0x80 { // zigzag, one byte
			d = int64(b>>1) ^ -int64(b&1)
			p++
		} else {
			var k int
			if d, k = binary.Varint(patch[p:]); k <= 0 {
				return fmt.Errorf("decode patch copy at byte %d: %w", p, ErrCorrupt)
			}
			p += k
		}
		if d > limit || d < -limit {
			return fmt.Errorf("decode patch copy at byte %d: displacement %d: %w", p, d, ErrCorrupt)
		}
		disp += d
		r := int64(pos) + disp
		if disp > limit || disp < -limit || r < 0 || r+int64(n) > int64(len(ref)) {
			return fmt.Errorf("decode patch copy at byte %d: reference offset %d+%d outside %d bytes: %w", p, r, n, len(ref), ErrCorrupt)
		}
		if !same || r != int64(pos) {
			copy(dst[pos:pos+n], ref[r:r+int64(n)])
		}
		pos += n
	}
	if pos != len(dst) {
		return fmt.Errorf("decode patch: %d of %d bytes: %w", pos, len(dst), ErrCorrupt)
	}
	return nil
}
