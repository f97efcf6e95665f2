package topology

import (
	"errors"
	"fmt"
)

// ErrInvalidSpec marks every validation failure of a spec: errors.Is(err,
// ErrInvalidSpec) tells a bad spec from an I/O error.
var ErrInvalidSpec = errors.New("invalid topology spec")

// ErrNoRoute is returned by Route when no path joins two nodes.
var ErrNoRoute = errors.New("no route between nodes")

// ErrUnknownNode is returned when a name is neither a node nor a switch.
var ErrUnknownNode = errors.New("unknown node")

// UnitError is a value that does not parse in its unit.
type UnitError struct {
	Kind  string // "bandwidth", "duration", "fraction", "size", "byte rate"
	Value string
	Line  int // YAML line, 0 if unknown
	Err   error
}

func (e *UnitError) Error() string {
	loc := ""
	if e.Line > 0 {
		loc = fmt.Sprintf("line %d: ", e.Line)
	}
	return fmt.Sprintf("%sbad %s %q: %v (%s)", loc, e.Kind, e.Value, e.Err, unitHelp[e.Kind])
}

func (e *UnitError) Unwrap() []error { return []error{e.Err, ErrInvalidSpec} }

// SpecError is one validation failure, located by a path such as
// "links[2].ends" or "nodes.web".
type SpecError struct {
	Path string
	Msg  string
	Err  error // optional cause
}

func (e *SpecError) Error() string {
	s := e.Path + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SpecError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Err, ErrInvalidSpec}
	}
	return []error{ErrInvalidSpec}
}

// specErr builds a SpecError with a formatted message.
func specErr(path, format string, args ...any) *SpecError {
	return &SpecError{Path: path, Msg: fmt.Sprintf(format, args...)}
}
