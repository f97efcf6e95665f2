package vdso

import "errors"

var (
	// ErrNotVDSO reports an image that is not a usable x86-64 vDSO ELF.
	ErrNotVDSO = errors.New("not a usable x86-64 vDSO image")
	// ErrNoSymbol reports a vDSO without __vdso_clock_gettime.
	ErrNoSymbol = errors.New("vDSO lacks a required symbol")
	// ErrNoClock reports a process without a vmux clock memfd.
	ErrNoClock = errors.New("no vmux clock found")
	// ErrAmbiguous reports a run name that matches several clocks.
	ErrAmbiguous = errors.New("several vmux clocks match")
	// ErrWriterStuck reports a seqlock held by a live writer for too long.
	ErrWriterStuck = errors.New("clock page writer did not finish")
	// ErrInsideRun reports a clock change attempted from a dilated process:
	// its real-clock readings would be virtual (and its trapped syscalls
	// would wait on the supervisor that waits on it).
	ErrInsideRun = errors.New("cannot change a clock from inside a dilated run")
	// ErrClosed reports use of a closed Clock.
	ErrClosed = errors.New("clock closed")
)
