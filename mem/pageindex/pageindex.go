package pageindex

import (
	"bytes"
	"errors"

	"github.com/zeebo/xxh3"
)

// PageSize is the page size indexed.
const PageSize = 4096

const (
	slabPages = 256 // 1 MiB slabs
	maxIDs    = 1<<32 - 2
)

// ErrFull means the index holds the most contents an ID can name.
var ErrFull = errors.New("page index full")

var zeroPage [PageSize]byte

// ZeroHash is Hash of the zero page.
var ZeroHash = xxh3.Hash(zeroPage[:])

// Hash is the 64-bit hash used for pages.
func Hash(page []byte) uint64 { return xxh3.Hash(page) }

// IsZero reports whether page is all zero bytes.
func IsZero(page []byte) bool {
	for len(page) >= PageSize {
		if !bytes.Equal(page[:PageSize], zeroPage[:]) {
			return false
		}
		page = page[PageSize:]
	}
	return bytes.Equal(page, zeroPage[:len(page)])
}

// ID names a distinct page content, numbered from 0 in order of insertion.
type ID = uint32

type slot struct {
	hash uint64
	id   uint32 // id + 1; 0 = empty
}

// Index maps page contents to IDs and keeps each content once.
type Index struct {
	slots []slot
	mask  uint64
	n     int
	slabs [][]byte
	// Collisions counts distinct contents that shared a hash with an
	// earlier one (expected 0; kept to prove the byte check runs).
	Collisions int
}

// New returns an empty index.
func New() *Index {
	return &Index{slots: make([]slot, 1024), mask: 1023}
}

// Len is the number of distinct contents.
func (x *Index) Len() int { return x.n }

// Content returns the stored bytes of id (aliasing the arena).
func (x *Index) Content(id ID) []byte {
	s := x.slabs[id/slabPages]
	o := int(id%slabPages) * PageSize
	return s[o : o+PageSize : o+PageSize]
}

// MemoryBytes is the memory the index and arena hold.
func (x *Index) MemoryBytes() int64 {
	return int64(len(x.slots))*16 + int64(len(x.slabs))*slabPages*PageSize
}

// Insert returns the ID of page's content (a PageSize slice), adding it if
// it is new; added reports whether it was.
func (x *Index) Insert(page []byte) (id ID, added bool, err error) {
	return x.InsertHash(page, Hash(page))
}

// InsertHash is Insert with the page's Hash already computed.
func (x *Index) InsertHash(page []byte, h uint64) (id ID, added bool, err error) {
	i := h & x.mask
	collided := false
	for {
		s := &x.slots[i]
		if s.id == 0 {
			break
		}
		if s.hash == h {
			if bytes.Equal(x.Content(s.id-1), page) {
				return s.id - 1, false, nil
			}
			collided = true
		}
		i = (i + 1) & x.mask
	}
	if x.n >= maxIDs {
		return 0, false, ErrFull
	}
	id = ID(x.n)
	if id%slabPages == 0 {
		x.slabs = append(x.slabs, make([]byte, slabPages*PageSize))
	}
	copy(x.Content(id), page)
	x.slots[i] = slot{hash: h, id: id + 1}
	x.n++
	if collided {
		x.Collisions++
	}
	if x.n*2 > len(x.slots) {
		x.grow()
	}
	return id, true, nil
}

func (x *Index) grow() {
	old := x.slots
	x.slots = make([]slot, 2*len(old))
	x.mask = uint64(len(x.slots) - 1)
	for _, s := range old {
		if s.id == 0 {
			continue
		}
		i := s.hash & x.mask
		for x.slots[i].id != 0 {
			i = (i + 1) & x.mask
		}
		x.slots[i] = s
	}
}
