package tcprto

import "errors"

// ErrNoHZ means the kernel's tick rate (CONFIG_HZ), the unit of the
// timeout the program returns, could not be found.
var ErrNoHZ = errors.New("tcprto: kernel tick rate (CONFIG_HZ) unknown")

// ErrBadFactor is a TDF the timeout cannot be scaled by (not positive).
var ErrBadFactor = errors.New("tcprto: factor must be positive")
