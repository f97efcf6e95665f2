package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/safefile"
	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/source"
	"github.com/zeebo/xxh3"
)

// Store is an open store. Opening reads the header, the footer and the index
// only; pages are read one at a time. A Store is safe for concurrent use.
type Store struct {
	f       io.ReaderAt
	c       io.Closer
	size    int64
	ft      footer
	x       *index
	payload uint64 // end of the payload section (= entry table offset)

	// data is the whole file mapped read-only (nil when reading through
	// f): pages are then read with no system call and no copy.
	data     []byte
	verified []atomic.Bool // per entry block, once its checksum matched (data only)

	mu     sync.Mutex // guards blocks
	blocks map[uint64][]byte
}

// maxRegionLen bounds a region (2^57 bytes: a 5-level x86-64 address space).
const maxRegionLen = 1 << 57

// pagePool holds scratch pages for payloads and references.
var pagePool = sync.Pool{New: func() any { return new([PageSize]byte) }}

// maxCachedBlocks bounds the verified entry blocks kept in memory.
const maxCachedBlocks = 256

// Open opens and checks the frame of a store: header, footer and index
// checksums and the index's consistency. Page payloads are checked when read
// (and all of them by Verify).
func Open(path string) (*Store, error) {
	f, st, err := safefile.OpenRegular(path) // never a FIFO or a device
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s, err := open(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	s.c = f
	if data, err := linux.MapFile(f, st.Size()); err == nil {
		s.data = data
		s.verified = make([]atomic.Bool, len(s.x.blockSums))
	}
	return s, nil
}

// OpenReader opens a store held by r (size bytes); Close is then a no-op.
func OpenReader(r io.ReaderAt, size int64) (*Store, error) {
	s, err := open(r, size)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

func open(f io.ReaderAt, size int64) (*Store, error) {
	var err error
	s := &Store{f: f, size: size, blocks: map[uint64][]byte{}}
	if s.size < headerSize+footerSize {
		return nil, corrupt("header", "file of %d bytes is too short", s.size)
	}
	hdr := make([]byte, headerSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if !bytes.Equal(hdr[:8], headerMagic[:]) {
		return nil, ErrNotStore
	}
	if xxh3.Hash(hdr[:56]) != binary.LittleEndian.Uint64(hdr[56:]) {
		return nil, corrupt("header", "checksum mismatch")
	}
	if v := binary.LittleEndian.Uint16(hdr[8:]); v != Version {
		return nil, fmt.Errorf("%w %d (this vmux reads version %d)", ErrVersion, v, Version)
	}
	if ps := binary.LittleEndian.Uint32(hdr[16:]); ps != PageSize {
		return nil, corrupt("header", "page size %d", ps)
	}
	fb := make([]byte, footerSize)
	if _, err := f.ReadAt(fb, s.size-footerSize); err != nil {
		return nil, fmt.Errorf("read footer: %w", err)
	}
	if !bytes.Equal(fb[:8], footerMagic[:]) || xxh3.Hash(fb[:56]) != binary.LittleEndian.Uint64(fb[56:]) {
		return nil, corrupt("footer", "bad magic or checksum (truncated or incomplete store?)")
	}
	s.ft = getFooter(fb)
	end := uint64(s.size - footerSize)
	if s.ft.entryOff < headerSize || s.ft.nEntries > uint64(noRef) ||
		s.ft.entryOff+s.ft.nEntries*entrySize != s.ft.indexOff ||
		s.ft.indexOff > end || s.ft.indexLen != end-s.ft.indexOff {
		return nil, corrupt("footer", "section offsets do not fit the %d-byte file", s.size)
	}
	s.payload = s.ft.entryOff
	ix := make([]byte, s.ft.indexLen)
	if _, err := f.ReadAt(ix, int64(s.ft.indexOff)); err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	if xxh3.Hash(ix) != s.ft.indexSum {
		return nil, corrupt("index", "checksum mismatch")
	}
	if s.x, err = decodeIndex(ix); err != nil {
		return nil, err
	}
	return s, s.checkIndex()
}

// checkIndex checks that runs tile each source's pages, entries are in
// range, residue lies in the payload, and there is one checksum per block.
func (s *Store) checkIndex() error {
	if want := (s.ft.nEntries + blockEntries - 1) / blockEntries; uint64(len(s.x.blockSums)) != want {
		return corrupt("index", "%d block checksums for %d entries", len(s.x.blockSums), s.ft.nEntries)
	}
	for i, src := range s.x.sources {
		var p uint64
		for _, r := range src.runs {
			if r.first != p || r.n == 0 || (r.entry != zeroRun && (r.entry > s.ft.nEntries || r.n > s.ft.nEntries-r.entry)) {
				return corrupt("index", "source %d: bad run at page %d", i, r.first)
			}
			p += r.n
		}
		if p != src.Pages {
			return corrupt("index", "source %d: runs cover %d of %d pages", i, p, src.Pages)
		}
		var pages uint64
		for _, r := range src.Regions {
			if r.Len > maxRegionLen || r.FileLen > r.Len || r.FileOff < 0 ||
				(src.Kind != source.KindProcess && (r.FileLen > uint64(src.FileSize) || uint64(r.FileOff) > uint64(src.FileSize)-r.FileLen)) {
				return corrupt("index", "source %d: region %q does not fit the source", i, r.Name)
			}
			pages += r.Pages()
		}
		if pages != src.Pages {
			return corrupt("index", "source %d: regions hold %d pages, runs %d", i, pages, src.Pages)
		}
		for _, r := range src.Residue {
			if r.off < headerSize || r.off > s.payload || r.Len > s.payload-r.off || r.FileOff < 0 ||
				r.Len > uint64(src.FileSize) || uint64(r.FileOff) > uint64(src.FileSize)-r.Len {
				return corrupt("index", "source %d: residue outside the payload or the file", i)
			}
		}
	}
	return nil
}

// Close closes the store file.
func (s *Store) Close() error {
	err := linux.UnmapFile(s.data)
	s.data = nil
	if s.c != nil {
		err = errors.Join(err, s.c.Close())
	}
	return err
}

// guardFault turns a fault while reading the mapping (the file was
// truncated under us: SIGBUS) into an error instead of a crash.
func (s *Store) guardFault(err *error) {
	if r := recover(); r != nil {
		*err = corrupt("mapped store", "fault while reading (file truncated while open?): %v", r)
	}
}

// Sources lists the stored sources.
func (s *Store) Sources() []Source { return s.x.sources }

// Detector, Codec and CrossDomain report how the store was packed.
func (s *Store) Detector() string  { return s.x.detector }
func (s *Store) Codec() string     { return s.x.codec }
func (s *Store) CrossDomain() bool { return s.x.cross }

// Lookup finds a source by index ("0") or name.
func (s *Store) Lookup(name string) (int, error) {
	if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < len(s.x.sources) {
		return i, nil
	}
	for i, src := range s.x.sources {
		if src.Name == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("find source %q: %w (the store has %d; vmux mem verify lists them)", name, ErrNoSource, len(s.x.sources))
}

// block returns verified entry block b.
func (s *Store) block(b uint64) ([]byte, error) {
	if s.data != nil {
		lo := s.ft.entryOff + b*blockBytes
		blk := s.data[lo : lo+min(uint64(blockEntries), s.ft.nEntries-b*blockEntries)*entrySize]
		if !s.verified[b].Load() {
			if xxh3.Hash(blk) != s.x.blockSums[b] {
				return nil, corrupt("entry block "+strconv.FormatUint(b, 10), "checksum mismatch")
			}
			s.verified[b].Store(true)
		}
		return blk, nil
	}
	s.mu.Lock()
	blk, ok := s.blocks[b]
	s.mu.Unlock()
	if ok {
		return blk, nil
	}
	n := min(uint64(blockEntries), s.ft.nEntries-b*blockEntries) * entrySize
	blk = make([]byte, n)
	if _, err := s.f.ReadAt(blk, int64(s.ft.entryOff+b*blockBytes)); err != nil {
		return nil, fmt.Errorf("read entry block %d: %w", b, err)
	}
	if xxh3.Hash(blk) != s.x.blockSums[b] {
		return nil, corrupt("entry block "+strconv.FormatUint(b, 10), "checksum mismatch")
	}
	s.mu.Lock()
	if len(s.blocks) >= maxCachedBlocks {
		clear(s.blocks)
	}
	s.blocks[b] = blk
	s.mu.Unlock()
	return blk, nil
}

func (s *Store) entry(i uint64) (entry, error) {
	if i >= s.ft.nEntries {
		return entry{}, corrupt("entries", "reference to entry %d of %d", i, s.ft.nEntries)
	}
	blk, err := s.block(i / blockEntries)
	if err != nil {
		return entry{}, err
	}
	o := (i % blockEntries) * entrySize
	return getEntry(blk[o : o+entrySize]), nil
}

// payloadOf reads and checks an entry's payload into buf.
func (s *Store) payloadOf(i uint64, e entry, buf []byte) ([]byte, error) {
	if e.n > PageSize || e.off < headerSize || e.off > s.payload || uint64(e.n) > s.payload-e.off {
		return nil, corrupt("entry "+strconv.FormatUint(i, 10), "payload outside the payload section")
	}
	var b []byte
	if s.data != nil {
		b = s.data[e.off : e.off+uint64(e.n)]
	} else {
		b = buf[:e.n]
		if _, err := s.f.ReadAt(b, int64(e.off)); err != nil {
			return nil, fmt.Errorf("read payload of entry %d: %w", i, err)
		}
	}
	if sum32(b) != e.sum {
		return nil, corrupt("payload of entry "+strconv.FormatUint(i, 10), "checksum mismatch")
	}
	return b, nil
}

// ReadPage rebuilds page `page` of source src into dst (PageSize bytes),
// reading only that page's entry and payload, and its reference's.
func (s *Store) ReadPage(src int, page uint64, dst []byte) (err error) {
	if s.data != nil {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer s.guardFault(&err)
	}
	if src < 0 || src >= len(s.x.sources) {
		return fmt.Errorf("read page: source %d: %w", src, ErrNoSource)
	}
	if len(dst) != PageSize {
		return fmt.Errorf("read page: buffer of %d bytes, want %d", len(dst), PageSize)
	}
	sr := &s.x.sources[src]
	if page >= sr.Pages {
		return fmt.Errorf("read page %d of %s: %w (it has %d pages)", page, sr.Name, ErrNoPage, sr.Pages)
	}
	ei, _ := lookupRun(sr.runs, page) // checkIndex made runs tile the pages
	if ei == zeroRun {
		clear(dst)
		return nil
	}
	if err := s.decodeEntry(ei, dst, 0); err != nil {
		return fmt.Errorf("read page %d of %s: %w", page, sr.Name, err)
	}
	return nil
}

// decodeEntry rebuilds entry i. A shared page's canonical page may itself
// be patched, so references are followed at most twice.
func (s *Store) decodeEntry(i uint64, dst []byte, depth int) error {
	if depth > 2 {
		return corrupt("entry "+strconv.FormatUint(i, 10), "reference chain too long")
	}
	e, err := s.entry(i)
	if err != nil {
		return err
	}
	switch e.kind {
	case kZero:
		clear(dst)
		return nil
	case kShared:
		return s.decodeEntry(uint64(e.ref), dst, depth+1)
	case kRaw, kCompressed, kPatched:
		var buf []byte
		if s.data == nil { // reading through f: the payload needs a buffer
			pb := pagePool.Get().(*[PageSize]byte)
			defer pagePool.Put(pb)
			buf = pb[:]
		}
		data, err := s.payloadOf(i, e, buf)
		if err != nil {
			return err
		}
		enc := mem.Encoded{Kind: mem.Kind(e.kind), Data: data}
		var ref []byte
		if e.kind == kCompressed {
			if int(e.codec) >= len(s.x.codecs) {
				return corrupt("entry "+strconv.FormatUint(i, 10), "codec %d not in the table", e.codec)
			}
			enc.Codec = s.x.codecs[e.codec]
		}
		if e.kind == kPatched {
			rb := pagePool.Get().(*[PageSize]byte)
			defer pagePool.Put(rb)
			if err := s.decodeEntry(uint64(e.ref), rb[:], depth+1); err != nil {
				return err
			}
			ref = rb[:]
		}
		if err := mem.DecodePage(enc, ref, dst); err != nil {
			return &CorruptError{What: "entry " + strconv.FormatUint(i, 10), Err: errors.Join(err, ErrCorrupt)}
		}
		return nil
	}
	return corrupt("entry "+strconv.FormatUint(i, 10), "unknown kind %d", e.kind)
}

// ReadResidue reads residue r of a source, checking its checksum.
func (s *Store) ReadResidue(r Residue) (_ []byte, err error) {
	if s.data != nil {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer s.guardFault(&err)
	}
	b := make([]byte, r.Len)
	if _, err := s.f.ReadAt(b, int64(r.off)); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read residue: %w", err)
	}
	if sum32(b) != r.sum {
		return nil, corrupt("residue at file offset "+strconv.FormatInt(r.FileOff, 10), "checksum mismatch")
	}
	return b, nil
}
