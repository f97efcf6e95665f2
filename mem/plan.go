package mem

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmux/vmux/mem/codec"
	"github.com/vmux/vmux/mem/delta"
	"github.com/vmux/vmux/mem/similar"
)

// unitSet is the set of canonical pages of one sharing mode: every distinct
// content (CrossDomain) or every (content, domain) pair.
type unitSet struct {
	n       int
	content []uint32 // nil: unit i is content i
	group   []int32  // nil: one group
}

func (us *unitSet) contentOf(i int) uint32 {
	if us.content == nil {
		return uint32(i)
	}
	return us.content[i]
}

func (us *unitSet) groupOf(i int) int32 {
	if us.group == nil {
		return 0
	}
	return us.group[i]
}

// plan is the decision for every unit of a unitSet.
type plan struct {
	kind     []Kind   // KindPatched, KindCompressed or KindRaw
	ref      []uint32 // reference unit of a patched unit
	patchLen []int32
	patch    [][]byte // patch bytes (only when kept)
	det      DetectorStats
}

// compressAll compresses every content once; both sharing modes use the
// sizes and the primary one the bytes. Contents are independent, so this
// runs on all Ps, each worker with its own output arena.
func (e *Engine) compressAll() error {
	n := e.idx.Len()
	e.csize = make([]int32, n)
	e.comp = make([][]byte, n)
	const batch = 256
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	workers := max(1, min(runtime.GOMAXPROCS(0), (n+batch-1)/batch))
	arenas := make([]arena, workers)
	for w := range workers {
		wg.Add(1)
		go func(a *arena) {
			defer wg.Done()
			var buf []byte
			pbuf := make([]byte, PageSize) // external pages
			for {
				lo := int(next.Add(batch)) - batch
				if lo >= n {
					return
				}
				if err := e.fin.add(int64(min(batch, n-lo))); err != nil {
					errOnce.Do(func() { first = err })
					return
				}
				for c := lo; c < min(lo+batch, n); c++ {
					page, err := e.idx.Read(uint32(c), pbuf)
					if err != nil {
						errOnce.Do(func() { first = err })
						return
					}
					out, err := e.codec.Compress(buf, page)
					switch {
					case errors.Is(err, codec.ErrIncompressible):
						e.csize[c] = PageSize
					case err != nil:
						errOnce.Do(func() {
							first = fmt.Errorf("compress page %d of source %d: %w", e.contents[c].first.Page, e.contents[c].first.Source, err)
						})
						return
					case len(out) > e.cfg.MaxCompressed:
						e.csize[c] = PageSize
					default:
						e.csize[c] = int32(len(out))
						e.comp[c] = a.add(out)
					}
					buf = out
				}
			}
		}(&arenas[w])
	}
	wg.Wait()
	e.compArenas = arenas
	return first
}

// cost is what content c costs stored on its own (compressed or raw).
func (e *Engine) cost(c uint32) int { return int(e.csize[c]) }

// goodPatch is a patch size below which other candidates are not tried.
const goodPatch = 256

// makePlan patches the units of us against each other (keeping patch bytes
// when keep is set) and decides what is compressed and what stays raw.
func (e *Engine) makePlan(us *unitSet, keep bool) (*plan, error) {
	n := us.n
	p := &plan{
		kind:     make([]Kind, n),
		ref:      make([]uint32, n),
		patchLen: make([]int32, n),
		det:      DetectorStats{Name: e.cfg.Detector},
	}
	if keep {
		p.patch = make([][]byte, n)
	}
	dets := map[int32]similar.Detector{}
	var (
		f     similar.Features
		enc   delta.Encoder
		cands = make([]uint32, 0, 16)
		buf   = make([]byte, 0, PageSize+64)
		best  = make([]byte, 0, PageSize+64)
		pbuf  = make([]byte, PageSize) // external page being planned
		rbuf  = make([]byte, PageSize) // external candidate reference
	)
	var t0 time.Duration
	const batch = 1024 // pages planned between progress reports
	for i := 0; i < n; i++ {
		if keep && i%batch == 0 {
			if err := e.fin.add(int64(min(batch, n-i))); err != nil {
				return nil, err
			}
		}
		if e.patchClock != nil {
			t0 = e.patchClock()
		}
		c := us.contentOf(i)
		page, err := e.idx.Read(c, pbuf)
		if err != nil {
			return nil, err
		}
		g := us.groupOf(i)
		det := dets[g]
		if det == nil {
			var err error
			if det, err = similar.New(e.cfg.Detector); err != nil {
				return nil, err
			}
			dets[g] = det
		}
		det.Features(page, &f)
		cands = det.Lookup(&f, e.cfg.Candidates, cands[:0])
		p.det.Examined++
		if len(cands) > 0 {
			p.det.WithCandidates++
		}
		// a patch must beat both MaxPatch and the page's own compression
		limit := min(e.cfg.MaxPatch, e.cost(c)-1)
		found := false
		for _, u := range cands {
			p.det.Candidates++
			ref, err := e.idx.Read(us.contentOf(int(u)), rbuf)
			if err != nil {
				return nil, err
			}
			out, err := enc.EncodeKeyed(buf, ref, page, limit, uint64(u))
			if err != nil {
				continue // ErrTooLarge: no patch within the limit
			}
			found = true
			p.ref[i] = u
			limit = len(out) - 1
			buf, best = best, out
			if len(best) <= goodPatch {
				break // not worth trying other candidates
			}
		}
		if e.patchClock != nil {
			e.patchLatency(e.patchClock()-t0, found)
		}
		if found {
			p.kind[i] = KindPatched
			p.patchLen[i] = int32(len(best))
			if keep {
				p.patch[i] = e.payload.add(best)
			}
			continue
		}
		det.Insert(&f, uint32(i))
	}
	// A reference is stored raw. Keep its patches only if they save more
	// than compressing the reference would have saved.
	benefit := make([]int64, n)
	refd := make([]bool, n)
	for i := 0; i < n; i++ {
		if p.kind[i] == KindPatched {
			benefit[p.ref[i]] += int64(e.cost(us.contentOf(i))) - int64(p.patchLen[i])
		}
	}
	for i := 0; i < n; i++ {
		if p.kind[i] != KindPatched {
			continue
		}
		r := p.ref[i]
		if benefit[r] <= int64(PageSize-e.cost(us.contentOf(int(r)))) {
			p.kind[i] = 0
			p.patchLen[i] = 0
			if keep {
				p.patch[i] = nil
			}
			p.det.PatchesDropped++
			continue
		}
		refd[r] = true
		p.det.PatchesKept++
		p.det.PatchBytes += int64(p.patchLen[i])
	}
	for i := 0; i < n; i++ {
		switch {
		case p.kind[i] == KindPatched:
		case refd[i]:
			p.kind[i] = KindRaw
			p.det.References++
		case e.csize[us.contentOf(i)] < PageSize:
			p.kind[i] = KindCompressed
		default:
			p.kind[i] = KindRaw
		}
	}
	if p.det.PatchesKept > 0 {
		p.det.MeanPatchBytes = float64(p.det.PatchBytes) / float64(p.det.PatchesKept)
	}
	return p, nil
}

// payloadBytes is what unit i of a plan stores.
func (e *Engine) payloadBytes(p *plan, us *unitSet, i int) int64 {
	switch p.kind[i] {
	case KindPatched:
		return int64(p.patchLen[i])
	case KindCompressed:
		return int64(e.csize[us.contentOf(i)])
	}
	return PageSize
}

// arena appends byte strings into 1 MiB chunks so that stored slices never
// move and there is no per-string allocation.
type arena struct {
	chunks [][]byte
	size   int64
}

func (a *arena) add(b []byte) []byte {
	const chunk = 1 << 20
	k := len(a.chunks)
	if k == 0 || cap(a.chunks[k-1])-len(a.chunks[k-1]) < len(b) {
		a.chunks = append(a.chunks, make([]byte, 0, max(chunk, len(b))))
		k++
	}
	c := a.chunks[k-1]
	n := len(c)
	c = append(c, b...)
	a.chunks[k-1] = c
	a.size += int64(len(b))
	return c[n:len(c):len(c)]
}
