package store

import (
	"encoding/binary"

	"github.com/zeebo/xxh3"
)

// Format constants (docs/store-format.md).
const (
	Version      = 1
	PageSize     = 4096
	headerSize   = 64
	footerSize   = 64
	entrySize    = 20
	blockEntries = 256
	blockBytes   = blockEntries * entrySize
	// zeroRunMin: at least this many consecutive zero pages become a run
	// without entries; shorter ones are zero entries.
	zeroRunMin = 8
	noRef      = ^uint32(0)
	zeroRun    = ^uint64(0) // Run.Entry of a run of zero pages
	maxString  = 1 << 16
)

var (
	headerMagic = [8]byte{'V', 'M', 'U', 'X', 'S', 'T', 'O', 'R'}
	footerMagic = [8]byte{'V', 'M', 'U', 'X', 'E', 'N', 'D', 0}
)

// Entry kinds on disk (the values of mem.Kind, fixed here by the format).
const (
	kZero       = 1
	kShared     = 2
	kPatched    = 3
	kCompressed = 4
	kRaw        = 5
)

// entry is one page's 20-byte record.
type entry struct {
	kind  uint8
	codec uint8  // index into the codec table (compressed pages)
	n     uint16 // payload length (0 for zero and shared)
	sum   uint32 // low 32 bits of xxh3 of the payload
	off   uint64 // payload offset in the file
	ref   uint32 // entry index of the reference (shared, patched)
}

func (e entry) put(b []byte) {
	b[0], b[1] = e.kind, e.codec
	binary.LittleEndian.PutUint16(b[2:], e.n)
	binary.LittleEndian.PutUint32(b[4:], e.sum)
	binary.LittleEndian.PutUint64(b[8:], e.off)
	binary.LittleEndian.PutUint32(b[16:], e.ref)
}

func getEntry(b []byte) entry {
	return entry{
		kind:  b[0],
		codec: b[1],
		n:     binary.LittleEndian.Uint16(b[2:]),
		sum:   binary.LittleEndian.Uint32(b[4:]),
		off:   binary.LittleEndian.Uint64(b[8:]),
		ref:   binary.LittleEndian.Uint32(b[16:]),
	}
}

func sum32(b []byte) uint32 { return uint32(xxh3.Hash(b)) }

// header: magic, version u16, header size u16, flags u32, page size u32,
// reserved to 56, xxh3 of bytes 0..56 at 56.
func putHeader(b []byte) {
	copy(b, headerMagic[:])
	binary.LittleEndian.PutUint16(b[8:], Version)
	binary.LittleEndian.PutUint16(b[10:], headerSize)
	binary.LittleEndian.PutUint32(b[12:], 0)
	binary.LittleEndian.PutUint32(b[16:], PageSize)
	binary.LittleEndian.PutUint64(b[56:], xxh3.Hash(b[:56]))
}

// footer locates the index and the entry table.
type footer struct {
	indexOff, indexLen, indexSum uint64
	entryOff, nEntries           uint64
}

func (f footer) put(b []byte) {
	copy(b, footerMagic[:])
	binary.LittleEndian.PutUint16(b[8:], Version)
	binary.LittleEndian.PutUint64(b[16:], f.indexOff)
	binary.LittleEndian.PutUint64(b[24:], f.indexLen)
	binary.LittleEndian.PutUint64(b[32:], f.indexSum)
	binary.LittleEndian.PutUint64(b[40:], f.entryOff)
	binary.LittleEndian.PutUint32(b[48:], uint32(f.nEntries))
	binary.LittleEndian.PutUint32(b[52:], uint32(f.nEntries>>32))
	binary.LittleEndian.PutUint64(b[56:], xxh3.Hash(b[:56]))
}

func getFooter(b []byte) footer {
	return footer{
		indexOff: binary.LittleEndian.Uint64(b[16:]),
		indexLen: binary.LittleEndian.Uint64(b[24:]),
		indexSum: binary.LittleEndian.Uint64(b[32:]),
		entryOff: binary.LittleEndian.Uint64(b[40:]),
		nEntries: uint64(binary.LittleEndian.Uint32(b[48:])) | uint64(binary.LittleEndian.Uint32(b[52:]))<<32,
	}
}
