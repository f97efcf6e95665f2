package mem

import "errors"

var errNotImplemented = errors.New("not implemented yet")

// Engine collects the pages of many sources and, on Finish, decides how each
// is stored. Use it from one goroutine.
type Engine struct {
	cfg Config
}

// NewEngine validates cfg (an unknown detector or codec gives an error that
// lists the valid names) and returns an empty engine.
func NewEngine(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg}, nil
}

// Config returns the configuration in effect, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// AddSource declares a source in trust domain dom and returns its index.
func (e *Engine) AddSource(name string, dom Domain) int { return 0 }

// AddPage appends the next page of source src. data must be exactly
// PageSize bytes; the engine copies what it keeps, so the caller may reuse
// data at once.
func (e *Engine) AddPage(src int, data []byte) error { return errNotImplemented }

// AddZeroPages appends n zero pages (a hole) to source src at the cost of
// at most one page-table extent.
func (e *Engine) AddZeroPages(src int, n int64) error { return errNotImplemented }

// Finish shares, patches and compresses (in that order) and returns the
// result. The engine cannot be used afterwards.
func (e *Engine) Finish() (*Result, error) { return nil, errNotImplemented }
