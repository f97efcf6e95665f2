// Package pageindex finds identical pages: a 64-bit page hash (xxh3), zero
// detection, a slab arena that keeps each distinct page content once, and an
// open-addressing index from hash to content.
//
// # In a nutshell
//
// Insert hashes a page, probes the index for entries with the same hash and
// compares the stored content byte for byte (a hash is never trusted alone:
// two different pages with one hash both get their own content id). A new
// content is copied into the arena, which grows in 1 MiB slabs so nothing
// already stored moves; the index costs 16 bytes per slot at a load factor
// of at most 1/2, about 32 bytes per distinct page (0.8% of a page).
//
// A content can also be external (InsertHashExternal): only its hash and
// id are kept, and the caller's Load function reads it back when it is
// needed, so sources that can be re-read (files) cost no copy.
//
// An Index is used by one goroutine at a time; Content and Read may be
// called concurrently once inserts have stopped (Read only if Load is safe
// for concurrent use).
package pageindex
