// Package codec holds the page compression codecs of the Difference Engine,
// registered by name: "lz4" (pierrec/lz4, fast), "zstd" (klauspost/compress,
// dense) and "none".
//
// # In a nutshell
//
// A Codec compresses one page into a caller's buffer and decompresses into a
// buffer of exactly the original size. Compressed blocks carry no length or
// checksum of their own (the store keeps both), so Decompress checks that the
// output fills dst exactly and turns any decoder complaint into ErrCorrupt;
// bad bytes never panic and never write past dst. All codecs are safe for
// concurrent use (per-call scratch comes from a sync.Pool).
package codec
