package codec

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstdCodec is zstd frames without checksum: denser than LZ4, slower.
// Encoder and decoder are built on first use (building them allocates).
type zstdCodec struct {
	once sync.Once
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	err  error
}

func newZstd() *zstdCodec { return &zstdCodec{} }

func (*zstdCodec) Name() string { return "zstd" }

func (c *zstdCodec) init() error {
	c.once.Do(func() {
		c.enc, c.err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderCRC(false),
			zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true),
			zstd.WithWindowSize(1<<16))
		if c.err != nil {
			return
		}
		// DecodeAll limited to cap(dst): a hostile frame cannot make the
		// decoder allocate more than one page.
		c.dec, c.err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxMemory(1<<20))
	})
	return c.err
}

func (c *zstdCodec) Compress(dst, src []byte) ([]byte, error) {
	if err := c.init(); err != nil {
		return dst[:0], fmt.Errorf("compress zstd: %w", err)
	}
	out := c.enc.EncodeAll(src, dst[:0])
	if len(out) >= len(src) {
		return out[:0], ErrIncompressible
	}
	return out, nil
}

func (c *zstdCodec) Decompress(dst, src []byte) error {
	if err := c.init(); err != nil {
		return fmt.Errorf("decompress zstd: %w", err)
	}
	out, err := c.dec.DecodeAll(src, dst[:0:len(dst)])
	if err != nil {
		return fmt.Errorf("decompress zstd: %v: %w", err, ErrCorrupt)
	}
	if len(out) != len(dst) {
		return fmt.Errorf("decompress zstd: %d bytes for a %d-byte page: %w", len(out), len(dst), ErrCorrupt)
	}
	if len(out) > 0 && &out[0] != &dst[0] {
		copy(dst, out)
	}
	return nil
}
