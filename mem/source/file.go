package source

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/safefile"
)

// fileSource streams regions of a file; raw images, Firecracker memory files
// and ELF cores are all this with different region lists.
type fileSource struct {
	f       *os.File
	st      os.FileInfo // at open: the identity of the file
	path    string
	kind    Kind
	size    int64
	regions []Region
	residue []Extent
	buf     []byte
	pt      pageTable // for ReadPage
}

// openFile opens a source file: a regular file only (never a device, FIFO
// or directory, and never blocking in open).
func openFile(path string) (*os.File, os.FileInfo, error) {
	f, st, err := safefile.OpenRegular(path)
	if errors.Is(err, safefile.ErrNotRegular) {
		return nil, nil, &Error{Source: path, Op: "open", Err: fmt.Errorf("%w (%w)", ErrBadSpec, err)}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open source: %w", err) // the PathError names the file
	}
	return f, st, nil
}

// OpenRaw opens a raw memory image: one region covering the whole file. A
// size that is not a multiple of the page size is padded with zeros to a whole
// page; Region.Len keeps the exact size.
func OpenRaw(path string) (Source, error) {
	f, st, err := openFile(path)
	if err != nil {
		return nil, err
	}
	size := st.Size()
	s := &fileSource{f: f, st: st, path: path, kind: KindRaw, size: size}
	if size > 0 {
		s.regions = []Region{{Name: "image", Len: uint64(size), FileLen: uint64(size)}}
	}
	return s, nil
}

func (s *fileSource) Name() string       { return s.path }
func (s *fileSource) Kind() Kind         { return s.kind }
func (s *fileSource) Domain() string     { return "file:" + s.path }
func (s *fileSource) Regions() []Region  { return s.regions }
func (s *fileSource) Skipped() []Skip    { return nil }
func (s *fileSource) FileSize() int64    { return s.size }
func (s *fileSource) Residue() []Extent  { return s.residue }
func (s *fileSource) Close() error       { return s.f.Close() }
func (s *fileSource) identity() Identity { return Identity{File: s.st} }

func (s *fileSource) Scan(sink Sink) error {
	s.buf = make([]byte, ChunkSize)
	defer func() { s.buf = nil }()
	st, err := s.f.Stat()
	if err == nil && st.Size() != s.size {
		err = ErrChanged
	}
	if err != nil {
		return &Error{Source: s.path, Op: "scan", Err: err}
	}
	for _, r := range s.regions {
		if err := sink.Region(r); err != nil {
			return err
		}
		if err := s.scanRegion(r, sink); err != nil {
			return err
		}
	}
	return nil
}

// scanRegion streams one region: data extents are read, holes and the part
// past FileLen become zero pages.
func (s *fileSource) scanRegion(r Region, sink Sink) error {
	var pos uint64 // region-relative, page-aligned
	for pos < r.FileLen {
		dataAt, holeAt := s.extent(r, pos)
		if z := dataAt/PageSize - pos/PageSize; z > 0 {
			if err := sink.Zeros(z); err != nil {
				return err
			}
			pos += z * PageSize
		}
		end := min(roundUp(holeAt), roundUp(r.FileLen))
		for pos < end {
			n := min(end-pos, uint64(len(s.buf)))
			if err := s.readPages(r, pos, s.buf[:n]); err != nil {
				return err
			}
			if err := sink.Pages(s.buf[:n]); err != nil {
				return err
			}
			pos += n
		}
	}
	if z := r.Pages() - pos/PageSize; pos/PageSize < r.Pages() && z > 0 {
		return sink.Zeros(z)
	}
	return nil
}

// extent finds the next data extent at or after region offset pos, clipped to
// the region: [dataAt, holeAt). Without hole support everything is data.
func (s *fileSource) extent(r Region, pos uint64) (dataAt, holeAt uint64) {
	off := r.FileOff + int64(pos)
	d, ok, err := linux.NextData(s.f, off)
	if err != nil {
		return pos, r.FileLen
	}
	if !ok || d >= r.FileOff+int64(r.FileLen) {
		return r.FileLen, r.FileLen
	}
	h, err := linux.NextHole(s.f, d)
	if err != nil {
		h = r.FileOff + int64(r.FileLen)
	}
	dataAt = uint64(d - r.FileOff)
	holeAt = min(uint64(h-r.FileOff), r.FileLen)
	return dataAt, holeAt
}

// readPages fills buf with the region's bytes at region offset pos, zero
// padded past FileLen.
func (s *fileSource) readPages(r Region, pos uint64, buf []byte) error {
	want := uint64(len(buf))
	if pos+want > r.FileLen {
		want = r.FileLen - pos
	}
	n, err := s.f.ReadAt(buf[:want], r.FileOff+int64(pos))
	if uint64(n) < want {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("read %d of %d bytes at offset %d: %w", n, want, r.FileOff+int64(pos), ErrChanged)
		}
		return &Error{Source: s.path, Op: "read", Err: err}
	}
	clear(buf[want:])
	return nil
}

func roundUp(n uint64) uint64 { return (n + PageSize - 1) / PageSize * PageSize }
