package delta

import "errors"

var (
	// ErrCorrupt means a patch does not decode against the given
	// reference into exactly len(dst) bytes.
	ErrCorrupt = errors.New("corrupt patch")
	// ErrTooLarge means the patch would exceed the caller's limit.
	ErrTooLarge = errors.New("patch exceeds limit")
)
