// Package store is the Difference Engine's on-disk format: every page of
// every source, stored as the engine encoded it (zero, shared, patched,
// compressed or raw), readable one page at a time.
//
// In a nutshell (docs/store-format.md has it byte by byte): a 64-byte header,
// the payload (patches, compressed and raw pages, file residue), a table of
// 20-byte page entries in checksummed blocks of 256, an index (sources,
// regions, runs of pages, block checksums) and a 64-byte footer that locates
// and checksums the index. Runs map a source's pages to entries; long runs of
// zero pages take no entries at all. An entry holds its kind, its payload's
// place, length and checksum, and for shared and patched pages the entry of
// its reference. Reading page N opens the header, footer and index (small),
// then reads one entry block and one payload (plus the reference's, once).
//
// Writes are atomic: a temp file in the target's directory, the header
// written last, fsync, rename, fsync of the directory. A pack that is killed
// leaves at most a hidden temp file whose header is zero, never a file that
// looks valid; one that fails removes its temp file.
package store
