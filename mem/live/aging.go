package live

import (
	"runtime/debug"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// The aging clock is the paper's NRU clock with the bits this kernel has.
// Every interval the engine asks the kernel which pages were written since
// the last look and write-protects them again in the same walk
// (PAGEMAP_SCAN with PM_SCAN_WP_MATCHING over memory registered in async
// write-protect mode: a write costs one minor fault the kernel resolves by
// itself and leaves a written bit). A page not written for the cold
// threshold is a candidate. Reads leave no bit (no accessed bit, no
// page_idle here), so they are sampled by evicting: a page faulted back
// sooner than the threshold was in use, and its heat doubles the time it
// must stay cold before it is tried again. Per process, the threshold
// follows a promotion-rate target, as Google's far memory does with its
// cold-age threshold: if more than PromotionTarget of the held pages come
// back per minute the threshold doubles; if far fewer do, it shrinks back
// towards the configured cold time.

// scanRange reads the written bits of sp, marks written pages seen at
// epoch, and offers each present page that stayed cold long enough to
// cand (which returns false when it wants no more).
func (t *target) scanRange(sp span, epoch uint32, cand func(addr uint64) bool) error {
	out := make([]linux.PageRegion, 512)
	start := sp.start
	wanting := cand != nil
	for start < sp.end {
		regs, walkEnd, err := linux.ScanPagemap(t.pagemap, linux.PagemapScan{
			Start: start, End: sp.end,
			Flags:  linux.PMScanWPMatching | linux.PMScanCheckWPAsync,
			AnyOf:  linux.PageIsPresent,
			Return: linux.PageIsWritten | linux.PageIsPresent | linux.PageIsPFNZero,
		}, out)
		if err != nil {
			return err
		}
		t.mu.Lock()
		for _, r := range regs {
			written := r.Categories&linux.PageIsWritten != 0
			zero := r.Categories&linux.PageIsPFNZero != 0
			for a := r.Start; a < r.End; a += pageSize {
				c, i := t.pt.at(a, true, epoch)
				if written {
					c.seen[i] = epoch
					continue
				}
				if !wanting || zero || c.held[i] != NoCID {
					continue
				}
				if epoch-c.seen[i] < t.threshold<<c.heat[i] {
					continue
				}
				if _, p := t.pending[a]; p {
					continue
				}
				if !cand(a) {
					wanting = false
				}
			}
		}
		t.mu.Unlock()
		if walkEnd <= start || walkEnd >= sp.end {
			break
		}
		start = walkEnd
	}
	return nil
}

// candidates scans all of t's memory and returns its cold pages (at most
// limit), in address order.
func (t *target) candidates(epoch uint32, limit int) []uint64 {
	t.mu.Lock()
	rs := append(spans(nil), t.ranges...)
	t.mu.Unlock()
	var out []uint64
	for _, sp := range rs {
		err := t.scanRange(sp, epoch, func(a uint64) bool {
			out = append(out, a)
			return len(out) < limit
		})
		if err != nil {
			t.e.log.Debug("scanning", "target", t.String(), "err", err)
		}
	}
	return out
}

// control moves t's cold threshold towards the promotion-rate target,
// once per window.
func (t *target) control(now time.Time, cfg *Config) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := &t.lastPromo
	if w.since.IsZero() {
		w.since, w.faults = now, t.st.faults
		return
	}
	el := now.Sub(w.since)
	if el < promoWindowLen {
		return
	}
	back := t.st.faults - w.faults
	w.since, w.faults = now, t.st.faults
	held := max(t.st.held, 1)
	rate := float64(back) / float64(held) / el.Minutes()
	minT := cfg.coldEpochs()
	switch {
	case rate > cfg.PromotionTarget && t.threshold < minT*64:
		t.threshold *= 2
	case rate < cfg.PromotionTarget/4 && t.threshold > minT:
		t.threshold = max(minT, t.threshold*3/4)
	}
}

const promoWindowLen = time.Minute

// tick is one turn of the clock: every target is scanned and, within the
// CPU budget, its cold pages are evicted. It runs on the injector thread.
func (e *Engine) tick() {
	epoch := e.epoch.Add(1)
	start := time.Now()
	budget := time.Duration(float64(e.cfg.Interval) * e.cfg.CPU)
	ts := e.activeTargets()
	if len(ts) == 0 {
		return
	}
	// start with a different target each tick, so that none starves
	k := int(epoch) % len(ts)
	ts = append(ts[k:], ts[:k]...)
	for _, t := range ts {
		e.tickTarget(t, epoch, start, budget)
	}
	e.compactIfNeeded()
	// The engine's own memory counts against what it saves: give the
	// garbage of busy turns back to the kernel now and then.
	if time.Since(start) > budget/4 && time.Since(e.lastFree) > 10*time.Second {
		debug.FreeOSMemory()
		e.lastFree = time.Now()
	}
}

func (e *Engine) tickTarget(t *target, epoch uint32, start time.Time, budget time.Duration) {
	if !t.use.TryRLock() {
		return // being closed
	}
	defer t.use.RUnlock()
	if t.pagemap == nil {
		return
	}
	{
		if t.wantAgent {
			e.startAgent(t)
		}
		if t.dirtyStg {
			if err := e.freeStaging(t, maxBatch); err == nil {
				t.dirtyStg = false
			}
		}
		if epoch%registerEvery == 0 {
			if err := t.registerNew(epoch); err != nil {
				e.log.Debug("registering new memory", "target", t.String(), "err", err)
			}
		}
		t.control(start, &e.cfg)
		over := time.Since(start) > budget
		limit := maxBatch * 64
		if over {
			limit = 1 // scan only: keep the written bits current
		}
		cands := t.candidates(epoch, limit)
		if over {
			return
		}
		e.log.Debug("tick", "target", t.String(), "epoch", epoch, "candidates", len(cands))
		for len(cands) > 0 && time.Since(start) < budget {
			n := min(len(cands), maxBatch)
			moved, err := e.evict(t, cands[:n])
			e.log.Debug("evicted", "target", t.String(), "tried", n, "moved", moved)
			if err != nil {
				e.log.Debug("evicting", "target", t.String(), "err", err)
				break
			}
			cands = cands[n:]
		}
	}
}

// registerEvery is how many ticks pass between looks for new mappings.
const registerEvery = 2
