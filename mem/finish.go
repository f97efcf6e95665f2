package mem

import (
	"context"
	"sync/atomic"
	"time"
)

// Metadata a store needs, as estimated in Stats.MetadataBytes: a header per
// source, an extent per run of zero or non-zero pages, a page-table entry
// per non-zero page (its canonical unit) and a record per stored unit
// (payload offset, length, kind, codec, reference).
const (
	MetadataPerSource  = 64 // plus the name's bytes
	MetadataPerExtent  = 24
	MetadataPerPage    = 4
	MetadataPerUnit    = 16
	KSMMetadataPerPage = 64 // the kernel's rmap_item, per its general_profit
)

// Finish shares, patches and compresses (in that order) and returns the
// result. The engine cannot be used afterwards.
func (e *Engine) Finish() (*Result, error) { return e.FinishContext(context.Background(), nil) }

// FinishContext is Finish that reports its progress and can be stopped:
// progress, if not nil, is called from time to time (from any goroutine,
// never concurrently) with the work done and the total (one unit per
// distinct page compressed, one per page planned); ctx is checked as often,
// and Finish then returns its error.
func (e *Engine) FinishContext(ctx context.Context, progress func(done, total int64)) (*Result, error) {
	if e.done {
		return nil, ErrFinished
	}
	e.done = true
	// The total is final once the units are known (below): contents to
	// compress plus units to plan.
	e.fin = &finishProgress{ctx: ctx, report: progress, total: 2 * int64(e.idx.Len())}
	defer func() { e.fin = nil }()
	t0 := time.Now()
	if err := e.compressAll(); err != nil {
		return nil, err
	}
	tCompress := time.Since(t0)

	primary, alt := e.unitSets()
	e.fin.total = int64(e.idx.Len()) + int64(primary.n) // before any plan reports
	// The alternate plan (CrossDomain flipped) only reads what the primary
	// one reads, so it runs on another P at the same time. With one domain
	// both modes have the same units, hence the same plan.
	type altResult struct {
		p   *plan
		d   time.Duration
		err error
	}
	altc := make(chan altResult, 1)
	if len(e.domains) > 1 {
		go func() {
			t := time.Now()
			ap, err := e.makePlan(alt, false)
			altc <- altResult{ap, time.Since(t), err}
		}()
	}
	t1 := time.Now()
	p, err := e.makePlan(primary, true)
	tPatch := time.Since(t1)
	var ar altResult
	if len(e.domains) > 1 {
		ar = <-altc
	}
	if err != nil {
		return nil, err
	}
	if ar.err != nil {
		return nil, ar.err
	}

	r := &Result{e: e, units: primary, plan: p}
	st := &r.Stats
	st.Detector, st.Codec, st.CrossDomain = e.cfg.Detector, e.cfg.Codec, e.cfg.CrossDomain
	st.Patching = p.det
	st.Sources, st.Total = e.account(primary, p)
	st.Alternate = st.Total
	if ar.p != nil {
		_, st.Alternate = e.account(alt, ar.p)
	}
	tAlt := ar.d

	st.KSM.MetadataBytes = e.present * KSMMetadataPerPage
	st.KSM.StoredBytes = int64(len(e.contents))*PageSize + st.KSM.MetadataBytes
	st.KSM.SavedBytes = st.Total.TotalBytes - st.KSM.StoredBytes
	st.IdenticalOnlyStoredBytes = st.KSM.StoredBytes
	st.SavingsRatio = ratio(st.Total.SavedBytes, st.KSM.SavedBytes)
	st.AlternateSavingsRatio = ratio(st.Alternate.SavedBytes, st.KSM.SavedBytes)
	if err := e.compact(primary, p); err != nil {
		return nil, err
	}
	st.Phases = PhaseTimes{
		Scan:      e.scan,
		Patch:     tPatch,
		Compress:  tCompress,
		Alternate: tAlt,
		Total:     e.scan + time.Since(t0),
	}
	return r, nil
}

func ratio(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// unitSets returns the units of the configured mode and of the other one.
func (e *Engine) unitSets() (primary, alt *unitSet) {
	global := &unitSet{n: len(e.contents)}
	perDomain := &unitSet{n: len(e.dunits), content: make([]uint32, len(e.dunits)),
		group: make([]int32, len(e.dunits))}
	for i, d := range e.dunits {
		perDomain.content[i] = d.content
		perDomain.group[i] = d.dom
	}
	if e.cfg.CrossDomain {
		return global, perDomain
	}
	return perDomain, global
}

// canonical is the first page of unit i of us.
func (e *Engine) canonical(us *unitSet, i int) PageRef {
	if us.content == nil {
		return e.contents[i].first
	}
	return e.dunits[i].first
}

// account computes per-source and total accounting of plan p over us.
func (e *Engine) account(us *unitSet, p *plan) ([]SourceStats, Totals) {
	per := make([]SourceStats, len(e.sources))
	var units int64
	for si := range e.sources {
		s := &e.sources[si]
		t := &per[si].Totals
		per[si].Name, per[si].Domain = s.name, s.dom
		t.TotalBytes = s.pages * PageSize
		t.MetadataBytes = MetadataPerSource + int64(len(s.name)) +
			int64(len(s.segs))*MetadataPerExtent + int64(len(s.entries))*MetadataPerPage
		for _, g := range s.segs {
			if g.first < 0 {
				t.Pages.Zero += g.count
			}
		}
		// every non-zero page is shared unless it is canonical (below)
		t.Pages.Shared = int64(len(s.entries))
	}
	for i := 0; i < us.n; i++ {
		t := &per[e.canonical(us, i).Source].Totals
		t.Pages.Shared--
		b := e.payloadBytes(p, us, i)
		switch p.kind[i] {
		case KindPatched:
			t.Pages.Patched++
			t.Bytes.Patched += b
			t.AfterPatchingBytes += b
		case KindCompressed:
			t.Pages.Compressed++
			t.Bytes.Compressed += b
			t.AfterPatchingBytes += PageSize
		default:
			t.Pages.Raw++
			t.Bytes.Raw += b
			t.AfterPatchingBytes += PageSize
		}
		t.AfterSharingBytes += PageSize
		t.AfterCompressionBytes += b
		t.MetadataBytes += MetadataPerUnit
		units++
	}
	var tot Totals
	for si := range per {
		t := &per[si].Totals
		t.StoredBytes = t.AfterCompressionBytes + t.MetadataBytes
		t.SavedBytes = t.TotalBytes - t.StoredBytes
		tot.add(t)
	}
	return per, tot
}

func (t *Totals) add(o *Totals) {
	t.Pages.add(&o.Pages)
	t.Bytes.add(&o.Bytes)
	t.TotalBytes += o.TotalBytes
	t.AfterSharingBytes += o.AfterSharingBytes
	t.AfterPatchingBytes += o.AfterPatchingBytes
	t.AfterCompressionBytes += o.AfterCompressionBytes
	t.MetadataBytes += o.MetadataBytes
	t.StoredBytes += o.StoredBytes
	t.SavedBytes += o.SavedBytes
}

func (k *KindCounts) add(o *KindCounts) {
	k.Zero += o.Zero
	k.Shared += o.Shared
	k.Patched += o.Patched
	k.Compressed += o.Compressed
	k.Raw += o.Raw
}

// compact keeps, for the Result, only what the encodings of plan p need:
// the raw contents and the compressed bytes of its units, copied into fresh
// arenas, and lets the scan's arena, index and unused compressions go. The
// Result then holds about the stored payload, not every distinct page.
func (e *Engine) compact(us *unitSet, p *plan) error {
	raw := make([][]byte, len(e.contents))
	pbuf := make([]byte, PageSize)
	comp := make([][]byte, len(e.contents))
	var ra, ca arena
	for i := 0; i < us.n; i++ {
		c := us.contentOf(i)
		switch p.kind[i] {
		case KindRaw:
			if raw[c] == nil {
				page, err := e.idx.Read(c, pbuf)
				if err != nil {
					return err
				}
				raw[c] = ra.add(page)
			}
		case KindCompressed:
			if comp[c] == nil {
				comp[c] = ca.add(e.comp[c])
			}
		}
	}
	e.raw, e.comp = raw, comp
	e.rawArena, e.compArenas = ra, []arena{ca}
	e.idx, e.csize = nil, nil
	return nil
}

// finishProgress counts Finish's work for its progress report and
// cancellation checks (each made once per batch of pages).
type finishProgress struct {
	ctx    context.Context
	report func(done, total int64)
	total  int64
	done   atomic.Int64
	busy   atomic.Bool // one report at a time
}

// add records n more units of work done and returns ctx's error, if any.
func (f *finishProgress) add(n int64) error {
	if f == nil {
		return nil
	}
	d := f.done.Add(n)
	if f.report != nil && f.busy.CompareAndSwap(false, true) {
		f.report(d, f.total)
		f.busy.Store(false)
	}
	return f.ctx.Err()
}
