package codec

import (
	"fmt"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// lz4Codec is LZ4 block format (no frame): the fastest to decode.
type lz4Codec struct {
	pool sync.Pool // *lz4.Compressor (holds a 64 KiB hash table)
}

func newLZ4() *lz4Codec {
	return &lz4Codec{pool: sync.Pool{New: func() any { return new(lz4.Compressor) }}}
}

func (*lz4Codec) Name() string { return "lz4" }

func (c *lz4Codec) Compress(dst, src []byte) ([]byte, error) {
	bound := lz4.CompressBlockBound(len(src))
	if cap(dst) < bound {
		dst = make([]byte, bound)
	}
	dst = dst[:bound]
	comp := c.pool.Get().(*lz4.Compressor)
	n, err := comp.CompressBlock(src, dst)
	c.pool.Put(comp)
	if err != nil {
		return dst[:0], fmt.Errorf("compress lz4: %w", err)
	}
	if n == 0 || n >= len(src) {
		return dst[:0], ErrIncompressible
	}
	return dst[:n], nil
}

func (*lz4Codec) Decompress(dst, src []byte) error {
	n, err := lz4.UncompressBlock(src, dst)
	if err != nil {
		return fmt.Errorf("decompress lz4: %v: %w", err, ErrCorrupt)
	}
	if n != len(dst) {
		return fmt.Errorf("decompress lz4: %d bytes for a %d-byte page: %w", n, len(dst), ErrCorrupt)
	}
	return nil
}
