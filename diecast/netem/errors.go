package netem

import "errors"

// ErrClosed is returned by Run on an emulator that was closed before it ran.
var ErrClosed = errors.New("emulator closed")

// ErrEndpoints is returned by New when the endpoints do not match the
// network's nodes.
var ErrEndpoints = errors.New("endpoints do not match the topology's nodes")

// ErrRunning is returned by a second Run.
var ErrRunning = errors.New("emulator already running")
