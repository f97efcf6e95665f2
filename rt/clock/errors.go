package clock

import "errors"

var (
	// ErrNoClock reports a clock name nothing serves.
	ErrNoClock = errors.New("no vmux clock by that name")
	// ErrAmbiguous reports a lookup that matches several clocks.
	ErrAmbiguous = errors.New("several vmux clocks match")
	// ErrNameInUse reports a clock name another live clock serves.
	ErrNameInUse = errors.New("clock name in use")
	// ErrWriterStuck reports a page whose writer did not finish (the owner
	// died inside a write).
	ErrWriterStuck = errors.New("clock page writer did not finish")
	// ErrInsideRun reports a clock change asked by a dilated process: its
	// real-clock readings would be virtual.
	ErrInsideRun = errors.New("cannot change a clock from inside a dilated run")
	// ErrNotPermitted reports a control request from a peer that is not root.
	ErrNotPermitted = errors.New("clock control is for root only")
	// ErrProtocol reports a malformed control message.
	ErrProtocol = errors.New("clock control protocol error")
	// ErrClosed reports use of a closed clock or view.
	ErrClosed = errors.New("clock closed")
)
