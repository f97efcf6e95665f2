package mem

import (
	"errors"
	"fmt"
	"time"

	"github.com/vmux/vmux/mem/codec"
	"github.com/vmux/vmux/mem/pageindex"
)

// Engine collects the pages of many sources and, on Finish, decides how each
// is stored. Use it from one goroutine.
type Engine struct {
	cfg   Config
	codec codec.Codec
	done  bool
	fin   *finishProgress // while Finish runs

	sources []source
	domains map[Domain]int32

	idx      *pageindex.Index
	contents []content // per distinct non-zero content (pageindex ID)
	dunits   []dunit   // per (content, domain) pair

	nextReader PageReader // for the next AddSource (SetNextReader)

	present int64         // pages given through AddPage (KSM scans these)
	scan    time.Duration // time spent in AddPage

	// set by Finish
	csize      []int32  // per content: compressed size, PageSize if not kept
	comp       [][]byte // per content: compressed bytes (nil if not kept)
	payload    arena    // patches
	compArenas []arena  // compressed bytes, one arena per compression worker

	// set by Finish's compaction: what the Result needs
	raw      [][]byte // per content: the page, if some unit of it is raw
	rawArena arena

	// patchClock and patchLatency, if set (benchmarks), time each page
	// offered for patching with patchClock and report it, with whether a
	// patch was found, to patchLatency.
	patchClock   func() time.Duration
	patchLatency func(d time.Duration, patched bool)
}

// source is one memory source and its page table: extents of zero pages and
// of non-zero pages, the latter pointing into entries (one dunit id each).
type source struct {
	name    string
	dom     Domain
	domIdx  int32
	reader  PageReader // nil: pages are copied
	pages   int64
	segs    []segment
	entries []uint32
}

// segment is an extent of a source's pages: zero pages (first < 0) or
// non-zero pages whose dunits are entries[first : first+count].
type segment struct {
	start, count, first int64
}

// content is a distinct non-zero page content: its first page anywhere, and
// the head of the chain of its dunits (one per domain it occurs in).
type content struct {
	first PageRef
	head  uint32
	hash  uint64 // to check a page re-read through a PageReader
}

// dunit is a content within one domain: its first page in that domain.
type dunit struct {
	content uint32
	dom     int32
	first   PageRef
	next    uint32 // next dunit of the same content (noUnit ends)
}

const noUnit = ^uint32(0)

// NewEngine validates cfg (an unknown detector or codec gives an error that
// lists the valid names) and returns an empty engine.
func NewEngine(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c, err := codec.Get(cfg.Codec)
	if err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	e := &Engine{cfg: cfg, codec: c, idx: pageindex.New(), domains: map[Domain]int32{}}
	e.idx.Load = e.loadExternal
	return e, nil
}

// Config returns the configuration in effect, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// PageReader reads pages of a source again, for sources that can be re-read
// (files, snapshots). It must be safe for concurrent use (Finish reads on
// several goroutines); an *os.File's ReadAt is.
type PageReader interface {
	// ReadPage reads page n (counted from 0, as added) into dst, which
	// is PageSize bytes.
	ReadPage(n int64, dst []byte) error
}

// AddSourceReader declares a source whose pages the engine does not copy:
// pages are still given through AddPage (or AddZeroPages) in order, but a
// distinct page is only hashed and indexed, and re-read through r whenever
// the engine needs its bytes (confirming a duplicate, patching,
// compressing). The scan then holds ~40 bytes per distinct page instead of
// 4 KiB. r must return the very bytes that were added: a page that reads
// back different (the source changed) fails the operation with
// ErrSourceChanged.
func (e *Engine) AddSourceReader(name string, dom Domain, r PageReader) int {
	i := e.AddSource(name, dom)
	e.sources[i].reader = r
	return i
}

// SetNextReader makes the next AddSource declare its source as
// AddSourceReader does, re-read through r: for callers that add sources
// through code that calls AddSource (store.Ingest). A nil r cancels it.
func (e *Engine) SetNextReader(r PageReader) { e.nextReader = r }

// loadExternal re-reads content id (first seen in a PageReader source).
func (e *Engine) loadExternal(id pageindex.ID, buf []byte) ([]byte, error) {
	c := &e.contents[id]
	s := &e.sources[c.first.Source]
	buf = buf[:PageSize]
	if err := s.reader.ReadPage(c.first.Page, buf); err != nil {
		return nil, &PageError{Source: c.first.Source, Page: c.first.Page, Err: fmt.Errorf("re-read page of %q: %w", s.name, err)}
	}
	if pageindex.Hash(buf) != c.hash {
		return nil, &PageError{Source: c.first.Source, Page: c.first.Page, Err: fmt.Errorf("re-read page of %q: %w", s.name, ErrSourceChanged)}
	}
	return buf, nil
}

// AddSource declares a source in trust domain dom and returns its index.
func (e *Engine) AddSource(name string, dom Domain) int {
	di, ok := e.domains[dom]
	if !ok {
		di = int32(len(e.domains))
		e.domains[dom] = di
	}
	e.sources = append(e.sources, source{name: name, dom: dom, domIdx: di, reader: e.nextReader})
	e.nextReader = nil
	return len(e.sources) - 1
}

func (e *Engine) source(src int) (*source, error) {
	if e.done {
		return nil, ErrFinished
	}
	if src < 0 || src >= len(e.sources) {
		return nil, fmt.Errorf("add page to source %d of %d: %w", src, len(e.sources), ErrNoSource)
	}
	return &e.sources[src], nil
}

// AddPage appends the next page of source src. data must be exactly
// PageSize bytes; the engine copies what it keeps, so the caller may reuse
// data at once.
func (e *Engine) AddPage(src int, data []byte) error {
	s, err := e.source(src)
	if err != nil {
		return err
	}
	if len(data) != PageSize {
		return &PageError{Source: src, Page: s.pages, Err: fmt.Errorf("%w: got %d bytes", ErrPageSize, len(data))}
	}
	// reading the clock costs ~10% of a page's scan: time every 8th page
	if e.present%scanSample != 0 {
		return e.addPage(s, src, data)
	}
	t0 := time.Now()
	err = e.addPage(s, src, data)
	e.scan += scanSample * time.Since(t0)
	return err
}

// scanSample: AddPage times one page in scanSample.
const scanSample = 8

func (e *Engine) addPage(s *source, src int, data []byte) error {
	e.present++
	h := pageindex.Hash(data)
	if h == pageindex.ZeroHash && pageindex.IsZero(data) {
		s.appendZero(1)
		return nil
	}
	var c pageindex.ID
	var added bool
	var err error
	if s.reader != nil {
		c, added, err = e.idx.InsertHashExternal(data, h)
	} else {
		c, added, err = e.idx.InsertHash(data, h)
	}
	if errors.Is(err, pageindex.ErrFull) {
		return &PageError{Source: src, Page: s.pages, Err: fmt.Errorf("%w: %v", ErrTooLarge, err)}
	}
	if err != nil {
		return &PageError{Source: src, Page: s.pages, Err: err}
	}
	here := PageRef{Source: src, Page: s.pages}
	var u uint32
	if added {
		e.contents = append(e.contents, content{first: here, head: noUnit, hash: h})
	}
	u = e.contents[c].head
	for u != noUnit && e.dunits[u].dom != s.domIdx {
		u = e.dunits[u].next
	}
	if u == noUnit {
		if len(e.dunits) >= int(noUnit) {
			return &PageError{Source: src, Page: s.pages, Err: ErrTooLarge}
		}
		u = uint32(len(e.dunits))
		e.dunits = append(e.dunits, dunit{content: c, dom: s.domIdx, first: here, next: e.contents[c].head})
		e.contents[c].head = u
	}
	s.appendUnit(u)
	return nil
}

// AddZeroPages appends n zero pages (a hole) to source src at the cost of
// at most one page-table extent.
func (e *Engine) AddZeroPages(src int, n int64) error {
	s, err := e.source(src)
	if err != nil {
		return err
	}
	if n < 0 {
		return &PageError{Source: src, Page: s.pages, Err: fmt.Errorf("%w: negative hole of %d pages", ErrNoPage, n)}
	}
	s.appendZero(n)
	return nil
}

func (s *source) appendZero(n int64) {
	if n == 0 {
		return
	}
	if k := len(s.segs); k > 0 && s.segs[k-1].first < 0 {
		s.segs[k-1].count += n
	} else {
		s.segs = append(s.segs, segment{start: s.pages, count: n, first: -1})
	}
	s.pages += n
}

func (s *source) appendUnit(u uint32) {
	if k := len(s.segs); k > 0 && s.segs[k-1].first >= 0 {
		s.segs[k-1].count++
	} else {
		s.segs = append(s.segs, segment{start: s.pages, count: 1, first: int64(len(s.entries))})
	}
	s.entries = append(s.entries, u)
	s.pages++
}

// lookup returns the dunit of page p of s, or noUnit for a zero page.
func (s *source) lookup(p int64) uint32 {
	lo, hi := 0, len(s.segs)
	for lo < hi {
		m := (lo + hi) / 2
		if s.segs[m].start+s.segs[m].count <= p {
			lo = m + 1
		} else {
			hi = m
		}
	}
	g := s.segs[lo]
	if g.first < 0 {
		return noUnit
	}
	return s.entries[g.first+p-g.start]
}
