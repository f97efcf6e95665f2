package live

import (
	"errors"
	"fmt"
)

var (
	// ErrNoContent means a content id names nothing stored (a bug, or a
	// journal that does not match its payload file).
	ErrNoContent = errors.New("no such content in the live store")
	// ErrPayloadCorrupt means a stored payload failed its checksum.
	ErrPayloadCorrupt = errors.New("live store payload corrupt")
	// ErrJournalCorrupt means the journal cannot be replayed.
	ErrJournalCorrupt = errors.New("live store journal corrupt")
	// ErrRunning means a live engine already runs (its PID is in the
	// error); talk to it (status, stop) instead of starting another.
	ErrRunning = errors.New("a live engine is already running")
	// ErrNotRunning means no live engine runs.
	ErrNotRunning = errors.New("no live engine is running (start one with vmux mem live PID...)")
	// ErrNothingToRecover means there is no state of a dead engine.
	ErrNothingToRecover = errors.New("no live engine state to recover")
	// ErrAttached means the process is already managed by the engine.
	ErrAttached = errors.New("process already attached")
	// ErrUnsupported means the kernel lacks a userfaultfd feature the
	// engine needs.
	ErrUnsupported = errors.New("kernel lacks a userfaultfd feature the live engine needs")
)

// TargetError says which process an error is about.
type TargetError struct {
	Pid int
	Op  string
	Err error
}

func (e *TargetError) Error() string { return fmt.Sprintf("%s process %d: %v", e.Op, e.Pid, e.Err) }
func (e *TargetError) Unwrap() error { return e.Err }
