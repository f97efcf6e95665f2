package mem

import (
	"fmt"

	"github.com/vmux/vmux/mem/codec"
	"github.com/vmux/vmux/mem/delta"
)

// Result is the outcome of Finish: every page's encoding plus the
// accounting. It is immutable and safe for concurrent use.
type Result struct {
	// Stats is the accounting (see Stats).
	Stats Stats

	e     *Engine
	units *unitSet
	plan  *plan
}

// SourceInfo describes one source of a Result.
type SourceInfo struct {
	Name   string
	Domain Domain
	Pages  int64
}

// Sources lists the sources in AddSource order.
func (r *Result) Sources() []SourceInfo {
	out := make([]SourceInfo, len(r.e.sources))
	for i, s := range r.e.sources {
		out[i] = SourceInfo{Name: s.name, Domain: s.dom, Pages: s.pages}
	}
	return out
}

// Page returns the encoding of page `page` of source src; an Encoded with
// KindInvalid if there is no such page (Encoding says why).
func (r *Result) Page(src int, page int64) Encoded {
	enc, _ := r.Encoding(src, page)
	return enc
}

// Encoding is Page with an error (ErrNoSource, ErrNoPage) for bad indexes.
func (r *Result) Encoding(src int, page int64) (Encoded, error) {
	i, canon, err := r.locate(src, page)
	switch {
	case err != nil:
		return Encoded{}, err
	case i < 0:
		return Encoded{Kind: KindZero}, nil
	case !canon:
		return Encoded{Kind: KindShared, Ref: r.e.canonical(r.units, i)}, nil
	}
	return r.unitEncoding(i), nil
}

// locate finds the unit of a page (-1 for a zero page) and whether the page
// is that unit's canonical page.
func (r *Result) locate(src int, page int64) (unit int, canonical bool, err error) {
	e := r.e
	if src < 0 || src >= len(e.sources) {
		return 0, false, fmt.Errorf("look up source %d of %d: %w", src, len(e.sources), ErrNoSource)
	}
	s := &e.sources[src]
	if page < 0 || page >= s.pages {
		return 0, false, &PageError{Source: src, Page: page, Err: fmt.Errorf("%w: source %q has %d pages", ErrNoPage, s.name, s.pages)}
	}
	u := s.lookup(page)
	if u == noUnit {
		return -1, false, nil
	}
	i := int(u)
	if r.units.content == nil {
		i = int(e.dunits[u].content)
	}
	return i, e.canonical(r.units, i) == PageRef{Source: src, Page: page}, nil
}

// unitEncoding is the stored form of unit i (its canonical page).
func (r *Result) unitEncoding(i int) Encoded {
	c := r.units.contentOf(i)
	switch r.plan.kind[i] {
	case KindPatched:
		ref := int(r.plan.ref[i])
		return Encoded{Kind: KindPatched, Ref: r.e.canonical(r.units, ref), Data: r.plan.patch[i]}
	case KindCompressed:
		return Encoded{Kind: KindCompressed, Codec: r.e.cfg.Codec, Data: r.e.comp[c]}
	}
	return Encoded{Kind: KindRaw, Data: r.e.raw[c]}
}

// Decode rebuilds page `page` of source src into dst (PageSize bytes).
func (r *Result) Decode(src int, page int64, dst []byte) error {
	i, _, err := r.locate(src, page)
	if err != nil {
		return err
	}
	if i < 0 {
		return DecodePage(Encoded{Kind: KindZero}, nil, dst)
	}
	// a shared page decodes as its unit; a unit is patched, compressed or
	// raw, and a patch's reference is a raw unit (read in place)
	enc := r.unitEncoding(i)
	var ref []byte
	if enc.Kind == KindPatched {
		ref = r.e.raw[r.units.contentOf(int(r.plan.ref[i]))]
	}
	return DecodePage(enc, ref, dst)
}

// DecodePage rebuilds one page into dst (PageSize bytes) from its encoding.
// ref is the fully decoded page enc.Ref for KindShared and KindPatched, and
// is ignored (may be nil) otherwise. Bad input gives an error wrapping
// ErrCorrupt, never a panic and never a write past dst.
func DecodePage(enc Encoded, ref []byte, dst []byte) error {
	if len(dst) != PageSize {
		return fmt.Errorf("decode page: %w: buffer of %d bytes", ErrPageSize, len(dst))
	}
	switch enc.Kind {
	case KindZero:
		clear(dst)
		return nil
	case KindShared:
		if len(ref) != PageSize {
			return fmt.Errorf("decode shared page: reference of %d bytes: %w", len(ref), ErrCorrupt)
		}
		copy(dst, ref)
		return nil
	case KindPatched:
		if len(ref) != PageSize {
			return fmt.Errorf("decode patched page: reference of %d bytes: %w", len(ref), ErrCorrupt)
		}
		if err := delta.Decode(dst, ref, enc.Data); err != nil {
			return fmt.Errorf("decode patched page: %w: %w", ErrCorrupt, err)
		}
		return nil
	case KindCompressed:
		c, err := codec.Get(enc.Codec)
		if err != nil {
			return fmt.Errorf("decode compressed page: %w: %w", ErrCorrupt, err)
		}
		if err := c.Decompress(dst, enc.Data); err != nil {
			return fmt.Errorf("decode compressed page: %w: %w", ErrCorrupt, err)
		}
		return nil
	case KindRaw:
		if len(enc.Data) != PageSize {
			return fmt.Errorf("decode raw page: %d bytes: %w", len(enc.Data), ErrCorrupt)
		}
		copy(dst, enc.Data)
		return nil
	}
	return fmt.Errorf("decode page: %w: kind %s", ErrCorrupt, enc.Kind)
}
