// Package delta is the Difference Engine's patch codec: it encodes a target
// page as copies from a reference page plus literal bytes, and decodes such
// a patch exactly.
//
// # In a nutshell
//
// A patch is the target length (uvarint) followed by ops. Each op starts
// with a uvarint v: length v>>1, and v&1 says copy (1) or literal (0). A
// literal is followed by its bytes. A copy is followed by a zigzag varint
// that moves the copy displacement (reference offset minus output offset);
// the displacement persists from copy to copy, so the common cases in memory
// pages, "same bytes at the same offset" and "same bytes shifted by the same
// amount as before", cost one byte.
//
// The encoder is greedy. At each target position it first tries the current
// displacement (4 bytes must match); on a miss at an 8-byte-aligned position
// it consults a hash table of 8-byte anchors at the reference's aligned
// offsets, built lazily on the first miss. So content moved by whole words
// (as in process memory) is found anywhere, content moved by other amounts
// only at the displacement already in use. Matches are extended forward 8 bytes at a time and backward
// into pending literals. Runs of misses make it skip faster, so dissimilar
// pages are rejected quickly, and encoding stops as soon as the patch would
// exceed a caller's limit.
//
// The decoder checks every length, offset and the final size, so corrupt
// patches give ErrCorrupt, never a panic or a write outside dst.
package delta
