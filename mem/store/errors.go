package store

import (
	"errors"
	"fmt"
)

var (
	// ErrNotStore means the file does not start with the store magic.
	ErrNotStore = errors.New("not a vmux memory store (bad magic)")
	// ErrVersion means the store was written by an unknown format version.
	ErrVersion = errors.New("unsupported store format version")
	// ErrCorrupt means a checksum or a structure check failed.
	ErrCorrupt = errors.New("store is corrupt")
	// ErrNoSource means a source name or index is not in the store.
	ErrNoSource = errors.New("no such source in the store")
	// ErrNoPage means a page number is past the end of its source.
	ErrNoPage = errors.New("no such page")
)

// CorruptError says where corruption was found.
type CorruptError struct {
	What string // "header", "index", "entry block 12", "payload of page 3 of source 1"...
	Err  error
}

func (e *CorruptError) Error() string { return fmt.Sprintf("check %s: %v", e.What, e.Err) }
func (e *CorruptError) Unwrap() error { return e.Err }

func corrupt(what string, format string, args ...any) error {
	return &CorruptError{What: what, Err: fmt.Errorf(format+": %w", append(args, ErrCorrupt)...)}
}
