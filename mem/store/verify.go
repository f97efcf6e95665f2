package store

import (
	"fmt"
	"runtime/debug"
	"strconv"
)

// Report is what Verify checked.
type Report struct {
	Sources      int   `json:"sources"`
	Pages        int64 `json:"pages"`          // pages decoded
	Entries      int64 `json:"entries"`        // entries checked
	ZeroRunPages int64 `json:"zero_run_pages"` // pages in zero runs (no entry)
	Blocks       int   `json:"entry_blocks"`
	Residue      int   `json:"residue_extents"`
}

// Verify checks every checksum in the store (Open already checked the
// header, footer and index) and decodes every page. progress, if not nil, is
// called with pages done so far. It stops at the first problem.
func (s *Store) Verify(progress func(pages int64)) (r Report, err error) {
	if s.data != nil {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer s.guardFault(&err)
	}
	r.Sources = len(s.x.sources)
	for b := range uint64(len(s.x.blockSums)) {
		if _, err := s.block(b); err != nil {
			return r, err
		}
		r.Blocks++
	}
	var pb [PageSize]byte
	for i := range s.ft.nEntries {
		e, err := s.entry(i)
		if err != nil {
			return r, err
		}
		if e.n > 0 {
			if _, err := s.payloadOf(i, e, pb[:]); err != nil {
				return r, err
			}
		}
		if (e.kind == kShared || e.kind == kPatched) && uint64(e.ref) >= s.ft.nEntries {
			return r, corrupt("entry "+strconv.FormatUint(i, 10), "reference to entry %d of %d", e.ref, s.ft.nEntries)
		}
		r.Entries++
	}
	dst := make([]byte, PageSize)
	for si, src := range s.x.sources {
		for _, run := range src.runs {
			if run.entry == zeroRun {
				r.ZeroRunPages += int64(run.n)
				r.Pages += int64(run.n)
				continue
			}
			for p := run.first; p < run.first+run.n; p++ {
				if err := s.ReadPage(si, p, dst); err != nil {
					return r, err
				}
				r.Pages++
				if progress != nil && r.Pages%4096 == 0 {
					progress(r.Pages)
				}
			}
		}
		for _, res := range src.Residue {
			if _, err := s.ReadResidue(res); err != nil {
				return r, fmt.Errorf("source %d: %w", si, err)
			}
			r.Residue++
		}
	}
	return r, nil
}
