// Package similar finds, for a page, earlier pages that probably differ from
// it in only a few bytes: the candidate references of the Difference Engine's
// patching step.
//
// # In a nutshell
//
// A Detector reduces a page to a few 64-bit features, keeps an index from
// feature to the pages that had it, and proposes as candidates the indexed
// pages that share the most features with a new page. Two detectors:
//
//   - "hsd21", the paper's HashSimilarityDetector(2,1): hash two 64-byte
//     blocks at fixed pseudo-random offsets; each hash indexes its own table
//     with one candidate per entry. Cheap, but blind to any change inside the
//     two sampled blocks and to shifted content.
//   - "sketch" (default): content-defined bottom-k fingerprints. Every
//     8-byte-aligned 32-byte window of the page is hashed; the k smallest
//     hashes of windows that are not a repeated word (zero fill, 0xff fill)
//     are the features. Because the windows are chosen by content, not by
//     position, the same features survive edits elsewhere in the page and
//     content shifted by whole words. Each feature keeps the last few pages
//     that had it; candidates are ranked by how many features they share.
//
// Detectors are not safe for concurrent use.
package similar
