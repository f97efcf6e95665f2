package netem

import "sync"

// Two buffer classes: most packets fit in small ones; only GSO-sized or
// jumbo packets take a large one. Pools hold *[]byte to avoid allocating
// on Put.
const smallBuf = 2048

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	largePool = sync.Pool{New: func() any { b := make([]byte, 65536); return &b }}
)

// getBuf returns a buffer of at least n bytes.
func getBuf(n int) *[]byte {
	if n <= smallBuf {
		return smallPool.Get().(*[]byte)
	}
	b := largePool.Get().(*[]byte)
	if len(*b) < n {
		nb := make([]byte, n)
		return &nb
	}
	return b
}

func putBuf(b *[]byte) {
	if b == nil {
		return
	}
	switch len(*b) {
	case smallBuf:
		smallPool.Put(b)
	case 65536:
		largePool.Put(b)
	}
}
