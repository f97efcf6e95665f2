package live

import (
	"fmt"
	"os"
	"sync"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem/pageindex"
)

// Loc is where a payload lives in a payload store, with its length and
// checksum (the low 32 bits of its xxh3).
type Loc struct {
	Off uint64
	Len uint32
	Sum uint32
}

// Payloads stores the encoded pages of a Pool.
type Payloads interface {
	// Put stores b (at most 4096 bytes) and returns where.
	Put(b []byte) (Loc, error)
	// Read returns the payload at l, read into buf (whose capacity must
	// be at least l.Len), checked against its checksum.
	Read(l Loc, buf []byte) ([]byte, error)
	// Free gives l's space back.
	Free(l Loc)
	// Bytes is the memory the store holds.
	Bytes() int64
}

func sum32(b []byte) uint32 { return uint32(pageindex.Hash(b)) }

// blockSize is the allocation unit of a payload file: payloads are packed
// into 4 KiB blocks (never across two), and a block whose payloads have all
// been freed has its memory given back (a hole punched) and is reused.
const blockSize = 4096

// blocks is the allocator of a payload file, by block number.
type blocks struct {
	live     []uint16 // live payload bytes per block
	free     []uint64 // empty blocks (holes), for reuse
	cur      uint64   // block being filled with small payloads
	curUsed  uint32
	haveCur  bool
	nblocks  uint64
	liveSize int64
}

// alloc returns the offset for a payload of n bytes: a whole block of its
// own for a raw page, else the rest of the block being filled.
func (b *blocks) alloc(n uint32) uint64 {
	if n == blockSize {
		blk := b.take()
		b.live[blk] = blockSize
		b.liveSize += blockSize
		return blk * blockSize
	}
	if !b.haveCur || b.curUsed+n > blockSize {
		b.cur, b.curUsed, b.haveCur = b.take(), 0, true
	}
	off := b.cur*blockSize + uint64(b.curUsed)
	b.curUsed += n
	b.live[b.cur] += uint16(n)
	b.liveSize += int64(n)
	return off
}

func (b *blocks) take() uint64 {
	if k := len(b.free); k > 0 {
		blk := b.free[k-1]
		b.free = b.free[:k-1]
		return blk
	}
	blk := b.nblocks
	b.nblocks++
	b.live = append(b.live, 0)
	return blk
}

// release frees n bytes at off; it returns the block to punch, if one
// became empty.
func (b *blocks) release(off uint64, n uint32) (uint64, bool) {
	blk := off / blockSize
	if blk >= b.nblocks || uint32(b.live[blk]) < n {
		return 0, false // not ours: ignore rather than corrupt the counts
	}
	b.live[blk] -= uint16(n)
	b.liveSize -= int64(n)
	if b.live[blk] != 0 {
		return 0, false
	}
	if b.haveCur && blk == b.cur {
		b.haveCur = false
	}
	b.free = append(b.free, blk)
	return blk, true
}

func (b *blocks) heldBytes() int64 { return int64(b.nblocks-uint64(len(b.free))) * blockSize }

// FilePayloads keeps payloads in a file (under /run/vmux: tmpfs, so memory
// that outlives the engine's process).
type FilePayloads struct {
	mu sync.Mutex
	f  *os.File
	b  blocks
}

// OpenFilePayloads opens (or creates) the payload file at path. Existing
// payloads are given back to it with Restore before new ones are put.
func OpenFilePayloads(path string) (*FilePayloads, error) {
	f, err := linux.OpenOwnerOnly(path, true)
	if err != nil {
		return nil, fmt.Errorf("open live payload file: %w", err)
	}
	return &FilePayloads{f: f}, nil
}

// Restore marks the payloads at locs as live (a recovering engine's
// contents) and punches holes in every block no live payload uses.
func (p *FilePayloads) Restore(locs []Loc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.f.Stat()
	if err != nil {
		return err
	}
	n := uint64(st.Size()+blockSize-1) / blockSize
	for _, l := range locs {
		if e := (l.Off + uint64(l.Len) + blockSize - 1) / blockSize; e > n {
			n = e
		}
	}
	p.b = blocks{live: make([]uint16, n), nblocks: n}
	for _, l := range locs {
		p.b.live[l.Off/blockSize] += uint16(l.Len)
		p.b.liveSize += int64(l.Len)
	}
	for blk := uint64(0); blk < n; blk++ {
		if p.b.live[blk] == 0 {
			p.b.free = append(p.b.free, blk)
			if err := linux.PunchHole(p.f, int64(blk*blockSize), blockSize); err != nil {
				return fmt.Errorf("free live payload block: %w", err)
			}
		}
	}
	return nil
}

func (p *FilePayloads) Put(b []byte) (Loc, error) {
	if len(b) == 0 || len(b) > blockSize {
		return Loc{}, fmt.Errorf("put payload of %d bytes", len(b))
	}
	p.mu.Lock()
	off := p.b.alloc(uint32(len(b)))
	p.mu.Unlock()
	if _, err := p.f.WriteAt(b, int64(off)); err != nil {
		p.Free(Loc{Off: off, Len: uint32(len(b))})
		return Loc{}, fmt.Errorf("write live payload: %w", err)
	}
	return Loc{Off: off, Len: uint32(len(b)), Sum: sum32(b)}, nil
}

func (p *FilePayloads) Read(l Loc, buf []byte) ([]byte, error) {
	if cap(buf) < int(l.Len) {
		return nil, fmt.Errorf("read live payload: buffer of %d for %d bytes", cap(buf), l.Len)
	}
	buf = buf[:l.Len]
	if _, err := p.f.ReadAt(buf, int64(l.Off)); err != nil {
		return nil, fmt.Errorf("read live payload: %w", err)
	}
	if sum32(buf) != l.Sum {
		return nil, fmt.Errorf("read live payload at %d: %w", l.Off, ErrPayloadCorrupt)
	}
	return buf, nil
}

func (p *FilePayloads) Free(l Loc) {
	p.mu.Lock()
	blk, empty := p.b.release(l.Off, l.Len)
	p.mu.Unlock()
	if empty {
		_ = linux.PunchHole(p.f, int64(blk*blockSize), blockSize)
	}
}

// Bytes is the memory the file holds (blocks in use), which is what the
// kernel counts for it on tmpfs.
func (p *FilePayloads) Bytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.heldBytes()
}

// Live is the bytes of the payloads in use (Bytes minus fragmentation).
func (p *FilePayloads) Live() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.liveSize
}

// Close closes the file (its contents stay).
func (p *FilePayloads) Close() error { return p.f.Close() }

// MemPayloads keeps payloads in memory, with the same allocator as a
// payload file: the fake for tests of everything above the store.
type MemPayloads struct {
	mu   sync.Mutex
	b    blocks
	data []byte
}

func (p *MemPayloads) Put(b []byte) (Loc, error) {
	if len(b) == 0 || len(b) > blockSize {
		return Loc{}, fmt.Errorf("put payload of %d bytes", len(b))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	off := p.b.alloc(uint32(len(b)))
	if need := int(p.b.nblocks * blockSize); len(p.data) < need {
		p.data = append(p.data, make([]byte, need-len(p.data))...)
	}
	copy(p.data[off:], b)
	return Loc{Off: off, Len: uint32(len(b)), Sum: sum32(b)}, nil
}

func (p *MemPayloads) Read(l Loc, buf []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cap(buf) < int(l.Len) || l.Off+uint64(l.Len) > uint64(len(p.data)) {
		return nil, fmt.Errorf("read payload at %d: %w", l.Off, ErrPayloadCorrupt)
	}
	buf = buf[:l.Len]
	copy(buf, p.data[l.Off:])
	if sum32(buf) != l.Sum {
		return nil, fmt.Errorf("read payload at %d: %w", l.Off, ErrPayloadCorrupt)
	}
	return buf, nil
}

func (p *MemPayloads) Free(l Loc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.b.release(l.Off, l.Len)
}

func (p *MemPayloads) Bytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.heldBytes()
}
