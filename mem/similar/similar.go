package similar

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultName is the default detector.
const DefaultName = "sketch"

// ErrUnknown means no detector has the given name.
var ErrUnknown = errors.New("unknown similarity detector")

// MaxFeatures bounds the features of one page.
const MaxFeatures = 8

// Features are the fingerprints of one page.
type Features struct {
	H [MaxFeatures]uint64
	N int
}

// Detector proposes candidate references for pages.
type Detector interface {
	Name() string
	// Features computes the features of page (a 4 KiB page) into f.
	Features(page []byte, f *Features)
	// Lookup appends to dst the ids of indexed pages that share features
	// with f, best first, at most max of them.
	Lookup(f *Features, max int, dst []uint32) []uint32
	// Insert indexes id under f.
	Insert(f *Features, id uint32)
}

// Remover is a Detector that can forget an indexed page, for indexes that
// live as long as a running engine whose pages come and go (the live
// Difference Engine). f must be the features the page was inserted with.
// Every detector here implements it.
type Remover interface {
	Remove(f *Features, id uint32)
}

// Names lists the detectors, default first; "none" disables patching.
func Names() []string { return []string{"sketch", "hsd21", "none"} }

// Valid reports whether name is a detector name.
func Valid(name string) bool {
	for _, n := range Names() {
		if n == name {
			return true
		}
	}
	return false
}

// New returns a fresh, empty detector.
func New(name string) (Detector, error) {
	switch name {
	case "sketch", "":
		return newSketch(), nil
	case "hsd21":
		return newHSD21(), nil
	case "none":
		return noDetector{}, nil
	}
	return nil, fmt.Errorf("new detector %q: %w (use one of %s)", name, ErrUnknown, strings.Join(Names(), ", "))
}

// noDetector never proposes a candidate.
type noDetector struct{}

func (noDetector) Name() string                                     { return "none" }
func (noDetector) Features(page []byte, f *Features)                { f.N = 0 }
func (noDetector) Lookup(f *Features, max int, d []uint32) []uint32 { return d }
func (noDetector) Insert(f *Features, id uint32)                    {}
func (noDetector) Remove(f *Features, id uint32)                    {}
