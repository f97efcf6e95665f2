package mem

// Result is the outcome of Finish: every page's encoding plus the
// accounting. It is immutable and safe for concurrent use.
type Result struct {
	// Stats is the accounting (see Stats).
	Stats Stats
}

// SourceInfo describes one source of a Result.
type SourceInfo struct {
	Name   string
	Domain Domain
	Pages  int64
}

// Sources lists the sources in AddSource order.
func (r *Result) Sources() []SourceInfo { return nil }

// Page returns the encoding of page `page` of source src; an Encoded with
// KindInvalid if there is no such page (Encoding says why).
func (r *Result) Page(src int, page int64) Encoded {
	enc, _ := r.Encoding(src, page)
	return enc
}

// Encoding is Page with an error (ErrNoSource, ErrNoPage) for bad indexes.
func (r *Result) Encoding(src int, page int64) (Encoded, error) {
	return Encoded{}, errNotImplemented
}

// Decode rebuilds page `page` of source src into dst (PageSize bytes).
func (r *Result) Decode(src int, page int64, dst []byte) error { return errNotImplemented }

// DecodePage rebuilds one page into dst (PageSize bytes) from its encoding.
// ref is the fully decoded page enc.Ref for KindShared and KindPatched, and
// is ignored (may be nil) otherwise. Bad input gives an error wrapping
// ErrCorrupt, never a panic and never a write past dst.
func DecodePage(enc Encoded, ref []byte, dst []byte) error { return errNotImplemented }
