// Package pagetest makes synthetic 4 KiB pages for the Difference Engine's
// tests: random bytes (incompressible, never similar) and pages shaped like
// process memory (small integers and heap pointers).
package pagetest

import "math/rand/v2"

// Size is the page size the generators fill.
const Size = 4096

// Random returns a page of uniformly random bytes.
func Random(r *rand.Rand) []byte {
	b := make([]byte, Size)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// MemoryLike returns a page of 8-byte words, as process memory holds: a
// quarter zero, a quarter small integers, half pointers into one heap.
func MemoryLike(r *rand.Rand) []byte {
	b := make([]byte, Size)
	for i := 0; i < Size; i += 8 {
		switch r.UintN(4) {
		case 0:
		case 1:
			b[i] = byte(r.UintN(16))
		default:
			v := 0x7f0000000000 + r.Uint64N(1<<20)*8
			for k := 0; k < 6; k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
	}
	return b
}
