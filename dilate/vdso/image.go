package vdso

import _ "embed"

//go:embed vdso.so
var image []byte

// Image returns a copy of the replacement vDSO image (ImageSize bytes),
// to be mapped R+X at the start of the region.
func Image() []byte {
	out := make([]byte, len(image))
	copy(out, image)
	return out
}

// Exported symbol offsets within the image, relative to its start.
func ImageSymbols() (Symbols, error) { return ParseVDSO(image) }
