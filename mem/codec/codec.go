package codec

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Codec compresses and decompresses whole pages.
type Codec interface {
	// Name is the registered name, stored with each compressed page.
	Name() string
	// Compress appends the compressed form of src to dst[:0] and returns
	// it. It returns ErrIncompressible if the result would not be smaller
	// than src.
	Compress(dst, src []byte) ([]byte, error)
	// Decompress decodes src into dst, which must come out exactly full.
	// Bad input yields an error wrapping ErrCorrupt.
	Decompress(dst, src []byte) error
}

var (
	mu       sync.RWMutex
	registry = map[string]Codec{}
	order    []string // registration order; defaults first
)

// Register adds c under c.Name(). It panics on a duplicate name, which is a
// programming error at init time.
func Register(c Codec) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[c.Name()]; dup {
		panic("codec: duplicate registration of " + c.Name())
	}
	registry[c.Name()] = c
	order = append(order, c.Name())
}

// Get returns the codec registered as name.
func Get(name string) (Codec, error) {
	mu.RLock()
	c, ok := registry[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("get codec %q: %w (use one of %s)", name, ErrUnknown, strings.Join(Names(), ", "))
	}
	return c, nil
}

// Names lists the registered codecs: "lz4", "zstd", "none", then any others
// sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := append([]string(nil), order...)
	if len(out) > 3 {
		sort.Strings(out[3:])
	}
	return out
}

func init() {
	Register(newLZ4())
	Register(newZstd())
	Register(none{})
}

// none stores pages as they are; Compress always reports incompressible.
type none struct{}

func (none) Name() string { return "none" }

func (none) Compress(dst, src []byte) ([]byte, error) { return dst[:0], ErrIncompressible }

func (none) Decompress(dst, src []byte) error {
	if len(src) != len(dst) {
		return fmt.Errorf("decompress none: %d bytes for a %d-byte page: %w", len(src), len(dst), ErrCorrupt)
	}
	copy(dst, src)
	return nil
}
