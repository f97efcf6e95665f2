package vclock

import (
	"errors"
	"fmt"
)

var (
	// ErrBadTDF reports a time-dilation factor that is not a positive
	// rational within [MinTDF, MaxTDF].
	ErrBadTDF = errors.New("invalid time-dilation factor")
	// ErrBadShare reports a CPU share outside (0, 1].
	ErrBadShare = errors.New("invalid CPU share")
	// ErrBadPage reports a clock page with a wrong size, magic or version.
	ErrBadPage = errors.New("invalid clock page")
)

// ParseError says which input failed to parse and why.
type ParseError struct {
	Input  string // the text given
	Reason string // what is wrong and what to do
	Err    error  // ErrBadTDF or ErrBadShare
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%v %q: %s", e.Err, e.Input, e.Reason)
}

func (e *ParseError) Unwrap() error { return e.Err }
