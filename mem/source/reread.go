package source

import (
	"fmt"
	"sort"
	"sync"
)

// Rereadable is a source whose pages can be read again, after or during
// Scan, and come back as Scan delivered them unless the file changed: the
// engine then need not keep a copy of every distinct page (it re-reads
// them through ReadPage and checks each against its hash). Files are
// rereadable; live processes are not (their memory changes under the scan).
type Rereadable interface {
	// ReadPage reads page n of the source, counted from 0 in Scan's order
	// (zero pages included), into dst (PageSize bytes). Safe for
	// concurrent use.
	ReadPage(n int64, dst []byte) error
}

// Rereader returns s as a Rereadable, if it is one.
func Rereader(s Source) (Rereadable, bool) {
	if w, ok := s.(withDomain); ok {
		s = w.Source
	}
	r, ok := s.(Rereadable)
	return r, ok
}

// pageTable maps a page number in Scan's order to its region.
type pageTable struct {
	once  sync.Once
	first []int64 // first page number of each region
}

func (s *fileSource) ReadPage(n int64, dst []byte) error {
	s.pt.once.Do(func() {
		var next int64
		s.pt.first = make([]int64, len(s.regions))
		for i, r := range s.regions {
			s.pt.first[i] = next
			next += int64(r.Pages())
		}
	})
	if len(dst) != PageSize {
		return &Error{Source: s.path, Op: "re-read", Err: fmt.Errorf("page buffer of %d bytes, want %d: %w", len(dst), PageSize, ErrBadSpec)}
	}
	i := sort.Search(len(s.pt.first), func(i int) bool { return s.pt.first[i] > n }) - 1
	if n < 0 || i < 0 || n-s.pt.first[i] >= int64(s.regions[i].Pages()) {
		return &Error{Source: s.path, Op: "re-read", Err: fmt.Errorf("page %d is outside the source: %w", n, ErrBadSpec)}
	}
	r := s.regions[i]
	pos := uint64(n-s.pt.first[i]) * PageSize
	if pos >= r.FileLen { // past the file's part of the region: zero
		clear(dst)
		return nil
	}
	// readPages pads past FileLen with zeros, as Scan does
	return s.readPages(r, pos, dst)
}
