package pageindex

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/zeebo/xxh3"
)

// PageSize is the page size indexed.
const PageSize = 4096

const (
	slabPages = 256       // 1 MiB slabs
	maxIDs    = 1<<32 - 3 // ^0 marks external
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

// external marks an id whose content is not in the arena.
const external = ^uint32(0)

// Index maps page contents to IDs and keeps each content once: in its arena,
// or (InsertHashExternal) only as a hash, the caller re-reading it on demand
// through Load.
type Index struct {
	slots []slot
	mask  uint64
	loc   []uint32 // per id: arena page number, or external
	pages uint32   // arena pages used
	slabs [][]byte
	// Load reads the content of an external id into buf (PageSize bytes)
	// and returns it; required once InsertHashExternal is used.
	Load func(id ID, buf []byte) ([]byte, error)
	// Collisions counts distinct contents that shared a hash with an
	// earlier one (expected 0; kept to prove the byte check runs).
	Collisions int
	scratch    []byte // for comparing against external contents
}

// New returns an empty index.
func New() *Index {
	return &Index{slots: make([]slot, 1024), mask: 1023}
}

// Len is the number of distinct contents.
func (x *Index) Len() int { return len(x.loc) }

// Content returns the stored bytes of id (aliasing the arena), or nil if
// id is external (use Read).
func (x *Index) Content(id ID) []byte {
	l := x.loc[id]
	if l == external {
		return nil
	}
	s := x.slabs[l/slabPages]
	o := int(l%slabPages) * PageSize
	return s[o : o+PageSize : o+PageSize]
}

// Read returns the content of id: the arena's copy, or what Load reads
// into buf for an external id.
func (x *Index) Read(id ID, buf []byte) ([]byte, error) {
	if c := x.Content(id); c != nil {
		return c, nil
	}
	if x.Load == nil {
		return nil, errors.New("read external page: no Load function")
	}
	return x.Load(id, buf)
}

// MemoryBytes is the memory the index and arena hold.
func (x *Index) MemoryBytes() int64 {
	return int64(len(x.slots))*16 + int64(len(x.loc))*4 + int64(len(x.slabs))*slabPages*PageSize
}

// Insert returns the ID of page's content (a PageSize slice), adding it if
// it is new; added reports whether it was.
func (x *Index) Insert(page []byte) (id ID, added bool, err error) {
	return x.InsertHash(page, Hash(page))
}

// InsertHash is Insert with the page's Hash already computed.
func (x *Index) InsertHash(page []byte, h uint64) (id ID, added bool, err error) {
	return x.insert(page, h, true)
}

// InsertHashExternal is InsertHash for a page the caller can read again
// through Load: a new content is not copied, only indexed.
func (x *Index) InsertHashExternal(page []byte, h uint64) (id ID, added bool, err error) {
	return x.insert(page, h, false)
}

func (x *Index) insert(page []byte, h uint64, keep bool) (id ID, added bool, err error) {
	i := h & x.mask
	collided := false
	for {
		s := &x.slots[i]
		if s.id == 0 {
			break
		}
		if s.hash == h {
			if x.scratch == nil {
				x.scratch = make([]byte, PageSize)
			}
			c, err := x.Read(s.id-1, x.scratch)
			if err != nil {
				return 0, false, fmt.Errorf("confirm page against content %d: %w", s.id-1, err)
			}
			if bytes.Equal(c, page) {
				return s.id - 1, false, nil
			}
			collided = true
		}
		i = (i + 1) & x.mask
	}
	if len(x.loc) >= maxIDs {
		return 0, false, ErrFull
	}
	id = ID(len(x.loc))
	if keep {
		if x.pages%slabPages == 0 {
			x.slabs = append(x.slabs, make([]byte, slabPages*PageSize))
		}
		x.loc = append(x.loc, x.pages)
		x.pages++
		copy(x.Content(id), page)
	} else {
		x.loc = append(x.loc, external)
	}
	x.slots[i] = slot{hash: h, id: id + 1}
	if collided {
		x.Collisions++
	}
	if len(x.loc)*2 > len(x.slots) {
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
