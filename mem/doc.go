// Package mem is the Difference Engine core: it turns the pages of many
// memory sources into the smallest set of encodings from which every page can
// be rebuilt exactly, and accounts honestly for what that costs.
//
// # In a nutshell
//
// Pages (4 KiB) arrive per source through AddPage (or AddZeroPages for holes).
// Each page is hashed (xxh3, package pageindex); zero pages become a run in
// the source's page table and cost no copy; other pages are looked up in an
// identical-page index and confirmed byte for byte before they are shared, so
// a duplicate costs one 4-byte page-table entry. The first page with a given
// content in a sharing group (a trust domain, or everything when CrossDomain
// is set) is that content's canonical page, kept once in a slab arena.
//
// Finish then follows the paper's order. Patching: every canonical page, in
// order of first appearance, asks a similarity detector (package similar) for
// earlier canonical pages of its own group that look alike, delta-encodes
// itself against the best few (package delta) and keeps the smallest patch if
// it is at most MaxPatch bytes and smaller than the page would compress to.
// A page that was patched is never a reference (no chains); references are
// stored whole. A canonical page with duplicates is patched like any other,
// so a shared page decodes in at most two steps (the canonical page's patch
// over its raw reference). A reference whose patches save less than compressing it would
// have saved gives up its patches. Compression: what is left is compressed
// with the configured codec (package codec) and kept compressed only if at
// most MaxCompressed bytes; raw otherwise.
//
// The Result gives random access to each page's Encoded form and can rebuild
// any page; DecodePage rebuilds one page from its encoding plus its decoded
// reference, which is all a store needs. Result.Stats accounts for payload
// and an estimate of the page-table metadata a store needs, next to the
// KSM-equivalent (identical-page sharing alone across all sources, with KSM's
// own per-page metadata), and repeats the totals as if CrossDomain were
// flipped so both figures can be reported.
//
// # Memory bound
//
// While adding pages the engine holds, per distinct non-zero content, one
// 4 KiB copy in the arena plus about 40 bytes of index and unit records; per
// non-zero page a 4-byte page-table entry; per run of zero pages one 24-byte
// extent (so holes of any size cost nothing). Finish adds the patch and
// compressed payloads (at most MaxPatch / MaxCompressed bytes per canonical
// page) and the similarity index (a few tens of bytes per canonical page),
// then compacts: the Result keeps only the raw pages, compressed bytes and
// patches its encodings use (about the stored payload) plus the page tables,
// and the scan's arena and indexes are released.
//
// A source added with AddSourceReader, or after SetNextReader (a file, a
// snapshot: anything that can be read again; mem/source's file sources are
// added so by analyze and pack) costs no page copy at all: its distinct pages are only
// hashed and indexed, and re-read through its PageReader, checked against
// their hash, whenever their bytes are needed.
//
// # Concurrency
//
// An Engine is used by one goroutine. A Result is immutable and safe for
// concurrent readers; the Data slices it returns alias its internal buffers
// and must not be modified.
package mem
