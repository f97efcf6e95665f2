package store

import (
	"context"
	"fmt"

	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/source"
)

// Meta is what a store records about a source besides its pages.
type Meta struct {
	Name     string
	Kind     source.Kind
	Domain   string
	FileSize int64
	Regions  []source.Region
	Skipped  []source.Skip
	Residue  []source.Extent
	// HolePages counts the pages the source reported as known zero without
	// reading them: file holes, the zero tail of core segments, and pages
	// of a live process that were never touched (not resident). They cost
	// no memory in the source, so savings on them are not real savings.
	HolePages int64
	// Input identifies the file or process read (not stored): Write
	// refuses to put the store over one of its own input files.
	Input source.Identity
}

// engineSink feeds a source's pages into an engine.
type engineSink struct {
	ctx      context.Context
	e        *mem.Engine
	idx      int
	pages    int64
	holes    int64
	progress func(bytes int64)
}

func (k *engineSink) Region(source.Region) error { return nil }

func (k *engineSink) Pages(b []byte) error {
	if err := k.ctx.Err(); err != nil { // once per batch of up to 4 MiB
		return err
	}
	for off := 0; off < len(b); off += mem.PageSize {
		if err := k.e.AddPage(k.idx, b[off:off+mem.PageSize]); err != nil {
			return err
		}
	}
	k.pages += int64(len(b) / mem.PageSize)
	if k.progress != nil {
		k.progress(int64(len(b)))
	}
	return nil
}

func (k *engineSink) Zeros(n uint64) error {
	if err := k.e.AddZeroPages(k.idx, int64(n)); err != nil {
		return err
	}
	k.pages += int64(n)
	k.holes += int64(n)
	if k.progress != nil {
		k.progress(int64(n) * mem.PageSize)
	}
	return nil
}

// Ingest scans s into e as a new engine source and returns its metadata.
// progress, if not nil, is called with the bytes of memory covered so far by
// each batch. ctx is checked once per batch. The page count is checked against the regions the source
// reports, so a short read can never pass unnoticed.
func Ingest(ctx context.Context, e *mem.Engine, s source.Source, progress func(bytes int64)) (Meta, error) {
	k := &engineSink{ctx: ctx, e: e, idx: e.AddSource(s.Name(), mem.Domain(s.Domain())), progress: progress}
	if err := s.Scan(k); err != nil {
		return Meta{}, fmt.Errorf("scan %s: %w", s.Name(), err)
	}
	m := Meta{Name: s.Name(), Kind: s.Kind(), Domain: s.Domain(), FileSize: s.FileSize(),
		Regions: s.Regions(), Skipped: s.Skipped(), Residue: s.Residue(), HolePages: k.holes}
	m.Input, _ = source.IdentityOf(s)
	var want int64
	for _, r := range m.Regions {
		want += int64(r.Pages())
	}
	if want != k.pages {
		return Meta{}, fmt.Errorf("scan %s: regions cover %d pages but %d were read: %w", s.Name(), want, k.pages, ErrCorrupt)
	}
	return m, nil
}
