package mem

import "fmt"

// PageSize is the page size the engine works in.
const PageSize = 4096

// Domain is a trust domain. Unless Config.CrossDomain is set, no page is
// shared with, or patched against, a page of another domain.
type Domain string

// Kind is how one page is stored.
type Kind uint8

const (
	// KindInvalid is the Kind of an Encoded that names no page.
	KindInvalid Kind = iota
	// KindZero: the page is all zero bytes; nothing is stored.
	KindZero
	// KindShared: identical to the canonical page Ref; nothing is stored.
	KindShared
	// KindPatched: Data is a delta against the reference page Ref.
	KindPatched
	// KindCompressed: Data is the page compressed with Codec.
	KindCompressed
	// KindRaw: Data is the page itself.
	KindRaw
)

var kindNames = [...]string{"invalid", "zero", "shared", "patched", "compressed", "raw"}

// String returns the lower-case name of k ("zero", "shared", ...).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// PageRef names one page of one source.
type PageRef struct {
	Source int   `json:"source"`
	Page   int64 `json:"page"`
}

// Encoded is how one page is stored. Data aliases the Result's buffers and
// must not be modified.
type Encoded struct {
	Kind Kind
	// Ref is the canonical page (KindShared) or the reference page
	// (KindPatched). A canonical page is itself raw, compressed or
	// patched; a reference page is itself raw. So a shared page decodes in
	// at most two steps: its canonical page's patch over a raw reference.
	Ref PageRef
	// Codec names the compression codec of a KindCompressed page.
	Codec string
	// Data is the delta (KindPatched), the compressed bytes
	// (KindCompressed) or the page (KindRaw); nil otherwise.
	Data []byte
}
