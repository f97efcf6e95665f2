package codec

import "errors"

var (
	// ErrUnknown means no codec is registered under a name.
	ErrUnknown = errors.New("unknown codec")
	// ErrCorrupt means compressed bytes do not decode to exactly len(dst)
	// bytes.
	ErrCorrupt = errors.New("corrupt compressed data")
	// ErrIncompressible means the data did not get smaller.
	ErrIncompressible = errors.New("data is incompressible")
)
