package mem

import "time"

// KindCounts holds one number per page kind.
type KindCounts struct {
	Zero       int64 `json:"zero"`
	Shared     int64 `json:"shared"`
	Patched    int64 `json:"patched"`
	Compressed int64 `json:"compressed"`
	Raw        int64 `json:"raw"`
}

// Totals is the accounting of a set of pages. All sizes are bytes.
type Totals struct {
	// Pages counts pages by final kind (a canonical page counts as
	// patched, compressed or raw, its duplicates as shared).
	Pages KindCounts `json:"pages"`
	// Bytes is the stored payload by kind: patch bytes, compressed bytes,
	// raw bytes (zero and shared pages store nothing).
	Bytes KindCounts `json:"bytes"`
	// TotalBytes is the memory scanned: pages x 4096, holes included.
	TotalBytes int64 `json:"total_bytes"`
	// AfterSharingBytes: zero and shared pages removed, the rest whole.
	AfterSharingBytes int64 `json:"after_sharing_bytes"`
	// AfterPatchingBytes: patched pages replaced by their patches.
	AfterPatchingBytes int64 `json:"after_patching_bytes"`
	// AfterCompressionBytes: the payload after all three mechanisms.
	AfterCompressionBytes int64 `json:"after_compression_bytes"`
	// MetadataBytes estimates the page table and reference table a store
	// needs (see the Metadata* constants).
	MetadataBytes int64 `json:"metadata_bytes"`
	// StoredBytes = AfterCompressionBytes + MetadataBytes.
	StoredBytes int64 `json:"stored_bytes"`
	// SavedBytes = TotalBytes - StoredBytes.
	SavedBytes int64 `json:"saved_bytes"`
}

// SourceStats is the accounting of one source. Payload is charged to the
// source that holds it: a shared page costs its source only its page-table
// entry; the canonical page's source pays for the content.
type SourceStats struct {
	Name   string `json:"name"`
	Domain Domain `json:"domain"`
	Totals
}

// KSMStats is the KSM-equivalent: full-page sharing alone, across all
// sources regardless of domain (as KSM does), zero pages merged too.
type KSMStats struct {
	// StoredBytes: distinct non-zero contents x 4096 plus MetadataBytes.
	StoredBytes int64 `json:"stored_bytes"`
	// MetadataBytes: KSM's own cost, one 64-byte rmap_item per page
	// present (holes from AddZeroPages are not present), as in the
	// kernel's general_profit formula.
	MetadataBytes int64 `json:"metadata_bytes"`
	// SavedBytes = TotalBytes - StoredBytes.
	SavedBytes int64 `json:"saved_bytes"`
}

// PhaseTimes is wall time per phase, in nanoseconds.
type PhaseTimes struct {
	// Scan: hashing, zero detection and sharing in AddPage (estimated
	// from every 8th call, as reading the clock on every page would cost
	// ~10% of the scan).
	Scan time.Duration `json:"scan_ns"`
	// Patch: similarity detection and delta encoding.
	Patch time.Duration `json:"patch_ns"`
	// Compress: compression of what was left.
	Compress time.Duration `json:"compress_ns"`
	// Alternate: computing the totals with CrossDomain flipped (0 with
	// one domain; otherwise concurrent with Patch, on another P).
	Alternate time.Duration `json:"alternate_ns"`
	// Total: Scan + the whole of Finish.
	Total time.Duration `json:"total_ns"`
}

// DetectorStats describes the patching step.
type DetectorStats struct {
	Name string `json:"name"`
	// Examined: canonical pages offered to the detector.
	Examined int64 `json:"examined"`
	// WithCandidates: pages for which the detector proposed any reference.
	WithCandidates int64 `json:"with_candidates"`
	// Candidates: references proposed (and delta-encoded) in all.
	Candidates int64 `json:"candidates"`
	// PatchesKept: patches in the final result.
	PatchesKept int64 `json:"patches_kept"`
	// PatchesDropped: patches given up because their reference saved more
	// compressed than as a reference.
	PatchesDropped int64 `json:"patches_dropped"`
	// PatchBytes: total size of the kept patches.
	PatchBytes int64 `json:"patch_bytes"`
	// MeanPatchBytes = PatchBytes / PatchesKept.
	MeanPatchBytes float64 `json:"mean_patch_bytes"`
	// References: pages that serve as a reference (stored raw).
	References int64 `json:"references"`
}

// Stats is the engine's accounting, stable as JSON.
type Stats struct {
	Detector    string `json:"detector"`
	Codec       string `json:"codec"`
	CrossDomain bool   `json:"cross_domain"`
	// Sources is per source, in AddSource order.
	Sources []SourceStats `json:"sources"`
	// Total is all sources together.
	Total Totals `json:"total"`
	// IdenticalOnlyStoredBytes is KSM.StoredBytes, repeated at top level.
	IdenticalOnlyStoredBytes int64    `json:"identical_only_stored_bytes"`
	KSM                      KSMStats `json:"ksm_equivalent"`
	// SavingsRatio = Total.SavedBytes / KSM.SavedBytes: how many times
	// what KSM would save vmux saves (0 when KSM saves nothing).
	SavingsRatio float64 `json:"savings_ratio"`
	// Alternate is Total computed with CrossDomain flipped (same
	// detector and codec), and AlternateSavingsRatio its ratio.
	Alternate             Totals        `json:"alternate"`
	AlternateSavingsRatio float64       `json:"alternate_savings_ratio"`
	Phases                PhaseTimes    `json:"phases"`
	Patching              DetectorStats `json:"patching"`
}
