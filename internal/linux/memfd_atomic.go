package linux

import (
	"sync/atomic"
	"unsafe"
)

// Atomic access to words of a shared mapping (MmapShared). Offsets must be
// naturally aligned and inside b; the callers use fixed layout constants,
// so a bad offset is a programming error and panics.

func word64(b []byte, off int) *uint64 {
	if off < 0 || off%8 != 0 || off+8 > len(b) {
		panic("linux: misaligned or out-of-range 64-bit shared word")
	}
	return (*uint64)(unsafe.Pointer(&b[off]))
}

func word32(b []byte, off int) *uint32 {
	if off < 0 || off%4 != 0 || off+4 > len(b) {
		panic("linux: misaligned or out-of-range 32-bit shared word")
	}
	return (*uint32)(unsafe.Pointer(&b[off]))
}

// SharedLoad64 atomically loads the 64-bit word at b[off:].
func SharedLoad64(b []byte, off int) uint64 { return atomic.LoadUint64(word64(b, off)) }

// SharedStore64 atomically stores v at b[off:].
func SharedStore64(b []byte, off int, v uint64) { atomic.StoreUint64(word64(b, off), v) }

// SharedCAS64 atomically compares and swaps the word at b[off:].
func SharedCAS64(b []byte, off int, old, new uint64) bool {
	return atomic.CompareAndSwapUint64(word64(b, off), old, new)
}

// SharedAdd64 atomically adds delta to the word at b[off:] and returns it.
func SharedAdd64(b []byte, off int, delta uint64) uint64 {
	return atomic.AddUint64(word64(b, off), delta)
}

// SharedLoad32 atomically loads the 32-bit word at b[off:].
func SharedLoad32(b []byte, off int) uint32 { return atomic.LoadUint32(word32(b, off)) }

// SharedStore32 atomically stores v at b[off:].
func SharedStore32(b []byte, off int, v uint32) { atomic.StoreUint32(word32(b, off), v) }

// SharedCAS32 atomically compares and swaps the 32-bit word at b[off:].
func SharedCAS32(b []byte, off int, old, new uint32) bool {
	return atomic.CompareAndSwapUint32(word32(b, off), old, new)
}
