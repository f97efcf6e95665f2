package mem

import (
	"errors"
	"fmt"
)

var (
	// ErrUnknownDetector means Config.Detector names no detector; the error
	// message lists the valid names (see Detectors).
	ErrUnknownDetector = errors.New("unknown similarity detector")
	// ErrUnknownCodec means Config.Codec names no codec (see Codecs).
	ErrUnknownCodec = errors.New("unknown compression codec")
	// ErrBadConfig means a numeric Config field is out of range.
	ErrBadConfig = errors.New("invalid engine configuration")
	// ErrPageSize means a page was not exactly PageSize bytes long.
	ErrPageSize = errors.New("page is not 4096 bytes (pass whole pages; pad or skip a partial last page)")
	// ErrNoSource means a source index was not returned by AddSource.
	ErrNoSource = errors.New("no such source (use an index returned by AddSource)")
	// ErrNoPage means a page number is outside its source.
	ErrNoPage = errors.New("no such page")
	// ErrFinished means pages were added after Finish.
	ErrFinished = errors.New("engine already finished (start a new Engine)")
	// ErrTooLarge means the engine's limits (2^32-1 distinct pages) were hit.
	ErrTooLarge = errors.New("too many distinct pages for one engine (split the sources across engines)")
	// ErrSourceChanged means a page re-read through a PageReader differs
	// from the page that was added.
	ErrSourceChanged = errors.New("source changed while being analyzed (analyze a stable copy, or add the source without a reader)")
	// ErrCorrupt means an encoding cannot be decoded (bad delta or
	// compressed bytes, missing reference, wrong size).
	ErrCorrupt = errors.New("corrupt page encoding")
)

// PageError says which page an error is about.
type PageError struct {
	Source int
	Page   int64
	Err    error
}

func (e *PageError) Error() string {
	return fmt.Sprintf("page %d of source %d: %v", e.Page, e.Source, e.Err)
}

func (e *PageError) Unwrap() error { return e.Err }
