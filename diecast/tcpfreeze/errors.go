package tcpfreeze

import "errors"

var (
	// ErrUnsupported: this kernel does not lock a socket the way Freeze
	// needs (see Probe); a pause then goes on without freezing TCP.
	ErrUnsupported = errors.New("tcp freeze unsupported on this kernel")
	// ErrReleased: the Frozen was released; it holds nothing any more.
	ErrReleased = errors.New("tcp freeze already released")
)

// UnsupportedError is Probe's verdict on a kernel that does not hold a
// socket's lock across the blocked setsockopt, with what it saw.
type UnsupportedError struct {
	Reason string
	Err    error // the system call's error, if one said so
}

func (e *UnsupportedError) Error() string {
	s := ErrUnsupported.Error() + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// Unwrap keeps the system call's error (its errno) reachable.
func (e *UnsupportedError) Unwrap() error { return e.Err }
