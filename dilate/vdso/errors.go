package vdso

import "errors"

var (
	// ErrNotVDSO reports an image that is not a usable x86-64 vDSO ELF.
	ErrNotVDSO = errors.New("not a usable x86-64 vDSO image")
	// ErrNoSymbol reports a vDSO without __vdso_clock_gettime.
	ErrNoSymbol = errors.New("vDSO lacks a required symbol")
)
