package live

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/codec"
	"github.com/vmux/vmux/mem/delta"
	"github.com/vmux/vmux/mem/pageindex"
	"github.com/vmux/vmux/mem/similar"
)

// CID names a content of the pool. A held page is one CID.
type CID uint32

const (
	// NoCID names nothing (a page not held).
	NoCID CID = 0
	// ZeroCID is the zero page: held for free, never stored.
	ZeroCID  CID = 1
	firstCID CID = 2
)

const pageSize = mem.PageSize

// maxFeatures is how many detector features a content keeps to be removed
// from its detector later (sketch uses 4, hsd21 2).
const maxFeatures = 4

// content is one stored page content. refs counts its holders (pages held
// with it) plus the patches that use it as their reference: a reference
// is never freed from under its patches.
type content struct {
	refs    int32
	holders int32
	kind    mem.Kind // KindPatched, KindCompressed or KindRaw
	nfeat   uint8    // features kept (0: not in a detector)
	indexed bool     // in byHash
	group   int32    // sharing group: the domain, or 0 with CrossDomain
	ref     CID      // reference of a patched content
	hash    uint64
	loc     Loc
	feat    [maxFeatures]uint64
}

type hashKey struct {
	group int32
	hash  uint64
}

// PoolStats counts the pool's contents and payload.
type PoolStats struct {
	Contents   int64 // stored contents
	Patched    int64 // of which patched, compressed, raw
	Compressed int64
	Raw        int64
	Holders    int64 // held pages with a stored content
	Payload    int64 // payload bytes (patches, compressed bytes, raw pages)
	// payload bytes by kind of content
	PatchedBytes, CompressedBytes, RawBytes int64
}

// Pool is the live Difference Engine's content store: every page taken
// out of a process is Put into it and comes back with Decode. Identical
// pages of one sharing group share one content; a new content is patched
// against a similar stored one if that is smaller than compressing it,
// else compressed, else kept raw (the paper's order). Contents are
// reference counted and leave when their last holder and patch do.
//
// Concurrency: Put may be called by one goroutine at a time; Decode,
// Acquire and Release by any. The mutex is never held while a page is
// decoded or encoded, only around the records.
type Pool struct {
	cfg      mem.Config
	codec    codec.Codec
	payloads Payloads
	hooks    PoolHooks

	putMu sync.Mutex // serializes Put (the encoder and scratch buffers)
	enc   delta.Encoder
	comp  []byte
	patch []byte
	best  []byte
	cand  []CID
	chash []uint64 // hashes of cand: the delta encoder's keys

	mu       sync.Mutex
	contents []content // by CID; 0 and 1 unused
	free     []CID
	byHash   map[hashKey]CID
	dets     map[int32]similar.Detector
	groups   map[mem.Domain]int32
	maxGroup int32
	st       PoolStats
}

// PoolHooks let the journal follow the pool; they run with the pool's
// mutex held and must not call back into it.
type PoolHooks struct {
	Put  func(id CID, c *Content)
	Free func(id CID)
}

// Content is the durable description of a stored content (what the
// journal records to rebuild the pool).
type Content struct {
	Kind  mem.Kind
	Group int32
	Ref   CID
	Hash  uint64
	Loc   Loc
	NFeat uint8
	Feat  [maxFeatures]uint64
}

// NewPool returns an empty pool storing payloads in p.
func NewPool(cfg mem.Config, p Payloads, hooks PoolHooks) (*Pool, error) {
	cfg, err := mem.Normalize(cfg)
	if err != nil {
		return nil, err
	}
	c, err := codec.Get(cfg.Codec)
	if err != nil {
		return nil, err
	}
	return &Pool{
		cfg: cfg, codec: c, payloads: p, hooks: hooks,
		contents: make([]content, firstCID),
		byHash:   map[hashKey]CID{}, dets: map[int32]similar.Detector{}, groups: map[mem.Domain]int32{},
	}, nil
}

// Config is the engine configuration in effect.
func (p *Pool) Config() mem.Config { return p.cfg }

// Group returns the sharing group of domain d: every domain is its own,
// unless CrossDomain puts them all in group 0.
func (p *Pool) Group(d mem.Domain) int32 {
	if p.cfg.CrossDomain {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.groups[d]
	if !ok {
		p.maxGroup++
		g = p.maxGroup
		p.groups[d] = g
	}
	return g
}

// setGroup restores a domain's group (recovery).
func (p *Pool) setGroup(d mem.Domain, g int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.groups[d] = g
	p.maxGroup = max(p.maxGroup, g)
}

// Put stores page (4096 bytes, copied) for a holder in sharing group g and
// returns its content, taking one hold on it, and how the page is stored:
// KindZero, KindShared (an existing content), or the kind of a new
// content (KindPatched, KindCompressed, KindRaw).
func (p *Pool) Put(g int32, page []byte) (CID, mem.Kind, error) {
	if len(page) != pageSize {
		return NoCID, 0, fmt.Errorf("put page: %w", mem.ErrPageSize)
	}
	h := pageindex.Hash(page)
	if h == pageindex.ZeroHash && pageindex.IsZero(page) {
		return ZeroCID, mem.KindZero, nil
	}
	p.putMu.Lock()
	defer p.putMu.Unlock()

	// 1. share: an identical content of the group, confirmed byte for byte
	key := hashKey{g, h}
	index := true
	p.mu.Lock()
	if id, ok := p.byHash[key]; ok {
		p.contents[id].refs++ // pinned while compared
		p.mu.Unlock()
		same, err := p.equal(id, page)
		p.mu.Lock()
		if err == nil && same {
			c := &p.contents[id]
			c.holders++
			p.st.Holders++
			p.mu.Unlock()
			return id, mem.KindShared, nil
		}
		p.releaseLocked(id)
		index = false // a hash collision: keep the first under the hash
		if err != nil {
			p.mu.Unlock()
			return NoCID, 0, err
		}
	}
	det, err := p.detector(g)
	if err != nil {
		p.mu.Unlock()
		return NoCID, 0, err
	}
	var f similar.Features
	det.Features(page, &f)
	ids := det.Lookup(&f, p.cfg.Candidates, nil)
	p.cand, p.chash = p.cand[:0], p.chash[:0]
	for _, id := range ids {
		c := &p.contents[id]
		if c.refs <= 0 {
			continue
		}
		c.refs++ // pinned while encoded against
		p.cand = append(p.cand, CID(id))
		p.chash = append(p.chash, c.hash)
	}
	p.mu.Unlock()

	// 2. patch, if smaller than compressing the page
	csize := pageSize
	comp, cerr := p.codec.Compress(p.comp, page)
	switch {
	case cerr == nil && len(comp) <= p.cfg.MaxCompressed:
		csize = len(comp)
		p.comp = comp
	case cerr == nil, errors.Is(cerr, codec.ErrIncompressible):
	default:
		p.unpin(p.cand, NoCID)
		return NoCID, 0, fmt.Errorf("compress page: %w", cerr)
	}
	limit := min(p.cfg.MaxPatch, csize-1)
	best := NoCID
	ref := getPage()
	defer putPage(ref)
	for i, id := range p.cand {
		if err := p.Decode(id, ref); err != nil {
			continue
		}
		// keyed by the reference's hash: a CID is reused, its bytes are not
		out, err := p.enc.EncodeKeyed(p.patch, ref, page, limit, p.chash[i])
		if err != nil {
			continue // no patch within the limit
		}
		best, limit = id, len(out)-1
		p.patch, p.best = p.best, out
		if len(out) <= 256 {
			break
		}
	}
	p.unpin(p.cand, best) // best stays pinned: it is the patch's reference

	// 3. store: the patch, else the compressed page, else the page
	c := Content{Group: g, Hash: h}
	var payload []byte
	switch {
	case best != NoCID:
		c.Kind, c.Ref, payload = mem.KindPatched, best, p.best
	case csize < pageSize:
		c.Kind, payload = mem.KindCompressed, p.comp[:csize]
	default:
		c.Kind, payload = mem.KindRaw, page
	}
	if c.Kind != mem.KindPatched {
		c.NFeat = uint8(min(f.N, maxFeatures))
		copy(c.Feat[:], f.H[:c.NFeat])
	}
	loc, err := p.payloads.Put(payload)
	if err != nil {
		p.unpin([]CID{best}, NoCID)
		return NoCID, 0, fmt.Errorf("store page: %w", err)
	}
	c.Loc = loc
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.insertLocked(&c, index, det)
	return id, c.Kind, nil
}

// insertLocked adds c with one holder (its reference, if patched, is
// already pinned for it).
func (p *Pool) insertLocked(c *Content, index bool, det similar.Detector) CID {
	var id CID
	if n := len(p.free); n > 0 {
		id = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		id = CID(len(p.contents))
		p.contents = append(p.contents, content{})
	}
	p.contents[id] = content{refs: 1, holders: 1, kind: c.Kind, group: c.Group, ref: c.Ref, hash: c.Hash,
		loc: c.Loc, nfeat: c.NFeat, feat: c.Feat}
	ct := &p.contents[id]
	if index {
		k := hashKey{c.Group, c.Hash}
		if _, taken := p.byHash[k]; !taken {
			p.byHash[k] = id
			ct.indexed = true
		}
	}
	if c.NFeat > 0 && det != nil {
		var f similar.Features
		f.N = int(c.NFeat)
		copy(f.H[:], c.Feat[:c.NFeat])
		det.Insert(&f, uint32(id))
	}
	p.count(c.Kind, 1, int64(c.Loc.Len))
	p.st.Holders++
	if p.hooks.Put != nil {
		p.hooks.Put(id, c)
	}
	return id
}

func (p *Pool) count(k mem.Kind, n int64, bytes int64) {
	p.st.Contents += n
	p.st.Payload += n * bytes
	switch k {
	case mem.KindPatched:
		p.st.Patched += n
		p.st.PatchedBytes += n * bytes
	case mem.KindCompressed:
		p.st.Compressed += n
		p.st.CompressedBytes += n * bytes
	case mem.KindRaw:
		p.st.Raw += n
		p.st.RawBytes += n * bytes
	}
}

func (p *Pool) detector(g int32) (similar.Detector, error) {
	d := p.dets[g]
	if d == nil {
		var err error
		if d, err = similar.New(p.cfg.Detector); err != nil {
			return nil, err
		}
		p.dets[g] = d
	}
	return d, nil
}

// unpin drops the pins Put took on ids, except keep's.
func (p *Pool) unpin(ids []CID, keep CID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if id != keep && id != NoCID {
			p.releaseLocked(id)
		}
	}
}

func (p *Pool) equal(id CID, page []byte) (bool, error) {
	b := getPage()
	defer putPage(b)
	if err := p.Decode(id, b); err != nil {
		return false, err
	}
	return bytes.Equal(b, page), nil
}

// Acquire takes one more hold on id (a page that now has two holders: a
// process and its fork child).
func (p *Pool) Acquire(id CID) {
	if id < firstCID {
		return
	}
	p.mu.Lock()
	c := &p.contents[id]
	c.refs++
	c.holders++
	p.st.Holders++
	p.mu.Unlock()
}

// Release drops one hold on id; the content leaves when nothing uses it.
func (p *Pool) Release(id CID) {
	if id < firstCID {
		return
	}
	p.mu.Lock()
	c := &p.contents[id]
	c.holders--
	p.st.Holders--
	p.releaseLocked(id)
	p.mu.Unlock()
}

func (p *Pool) releaseLocked(id CID) {
	for id >= firstCID {
		c := &p.contents[id]
		c.refs--
		if c.refs > 0 {
			return
		}
		if c.indexed {
			delete(p.byHash, hashKey{c.group, c.hash})
		}
		if c.nfeat > 0 {
			if r, ok := p.dets[c.group].(similar.Remover); ok {
				var f similar.Features
				f.N = int(c.nfeat)
				copy(f.H[:], c.feat[:c.nfeat])
				r.Remove(&f, uint32(id))
			}
		}
		p.payloads.Free(c.loc)
		p.count(c.kind, -1, int64(c.loc.Len))
		next := NoCID
		if c.kind == mem.KindPatched {
			next = c.ref
		}
		*c = content{}
		p.free = append(p.free, id)
		if p.hooks.Free != nil {
			p.hooks.Free(id)
		}
		id = next // a patch let go of its reference
	}
}

// Decode rebuilds content id into dst (4096 bytes). The caller must hold
// id (or be its holder's owner) so that it cannot leave meanwhile.
func (p *Pool) Decode(id CID, dst []byte) error {
	if len(dst) != pageSize {
		return fmt.Errorf("decode page: %w", mem.ErrPageSize)
	}
	if id == ZeroCID {
		clear(dst)
		return nil
	}
	p.mu.Lock()
	if id < firstCID || int(id) >= len(p.contents) || p.contents[id].refs <= 0 {
		p.mu.Unlock()
		return fmt.Errorf("decode content %d: %w", id, ErrNoContent)
	}
	c := p.contents[id]
	var r content
	if c.kind == mem.KindPatched {
		r = p.contents[c.ref]
	}
	p.mu.Unlock()
	if c.kind != mem.KindPatched {
		return p.decodeWhole(&c, dst)
	}
	ref := getPage()
	defer putPage(ref)
	if err := p.decodeWhole(&r, ref); err != nil {
		return fmt.Errorf("decode reference %d of %d: %w", c.ref, id, err)
	}
	buf := getPage()
	defer putPage(buf)
	patch, err := p.payloads.Read(c.loc, buf)
	if err != nil {
		return fmt.Errorf("decode content %d: %w", id, err)
	}
	if err := delta.Decode(dst, ref, patch); err != nil {
		return fmt.Errorf("decode content %d: %w: %w", id, mem.ErrCorrupt, err)
	}
	return nil
}

// decodeWhole decodes a compressed or raw content.
func (p *Pool) decodeWhole(c *content, dst []byte) error {
	switch c.kind {
	case mem.KindRaw:
		b, err := p.payloads.Read(c.loc, dst)
		if err != nil {
			return err
		}
		if len(b) != pageSize {
			return fmt.Errorf("raw content of %d bytes: %w", len(b), mem.ErrCorrupt)
		}
		return nil
	case mem.KindCompressed:
		buf := getPage()
		defer putPage(buf)
		b, err := p.payloads.Read(c.loc, buf)
		if err != nil {
			return err
		}
		if err := p.codec.Decompress(dst, b); err != nil {
			return fmt.Errorf("%w: %w", mem.ErrCorrupt, err)
		}
		return nil
	}
	return fmt.Errorf("content of kind %s: %w", c.kind, mem.ErrCorrupt)
}

// Kind returns how content id is stored (KindZero for ZeroCID).
func (p *Pool) Kind(id CID) mem.Kind {
	if id == ZeroCID {
		return mem.KindZero
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(id) >= len(p.contents) {
		return mem.KindInvalid
	}
	return p.contents[id].kind
}

// Holders returns how many pages hold id.
func (p *Pool) Holders(id CID) int {
	if id < firstCID {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return int(p.contents[id].holders)
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// MetadataBytes estimates the memory the pool's records use.
func (p *Pool) MetadataBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(cap(p.contents))*int64(contentSize) + int64(len(p.byHash))*24 + int64(cap(p.free))*4
}

const contentSize = 88 // unsafe.Sizeof(content{}), rounded

var pagePool = sync.Pool{New: func() any { b := make([]byte, pageSize); return &b }}

func getPage() []byte  { return *(pagePool.Get().(*[]byte)) }
func putPage(b []byte) { pagePool.Put(&b) }
