package live

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/rt/ptrace"
)

// maxBatch is how many pages one eviction moves: every staging slot but
// the probe slot.
const maxBatch = stagingPages - 1

// run is a run of consecutive pages of a batch.
type run struct {
	addr  uint64
	first int // index of its first page in the batch
	n     int
}

func runsOf(addrs []uint64) []run {
	var rs []run
	for i, a := range addrs {
		if k := len(rs); k > 0 && rs[k-1].addr+uint64(rs[k-1].n)*pageSize == a {
			rs[k-1].n++
			continue
		}
		rs = append(rs, run{addr: a, first: i, n: 1})
	}
	return rs
}

// evict takes the cold pages addrs (sorted, at most maxBatch) out of t:
//
//  1. read them and store them in the pool (shared, patched, compressed);
//     a page that would only be kept raw and unshared stays where it is;
//  2. journal each page's staging slot, then move the pages out of the
//     process into the staging area with UFFDIO_MOVE (injected: the kernel
//     only moves within the calling process), which is atomic with respect
//     to the process's writes; a fault on a moved page is now served from
//     its slot by the serve loop;
//  3. read the slots and check each against what was stored (a page
//     written between 1 and 2 is stored again);
//  4. journal the held pages, then free the staging area (MADV_DONTNEED,
//     injected), so the memory really leaves the process.
//
// It runs on the injector thread and returns how many pages left.
func (e *Engine) evict(t *target, addrs []uint64) (int, error) {
	if len(addrs) == 0 {
		return 0, nil
	}
	n := len(addrs)
	if len(e.preBuf) < n*pageSize {
		e.preBuf = make([]byte, maxBatch*pageSize)
	}
	pre := e.preBuf[:n*pageSize]
	ok := make([]bool, n)
	for _, r := range runsOf(addrs) {
		got, _ := linux.ReadProcessMemory(t.pid, r.addr, pre[r.first*pageSize:(r.first+r.n)*pageSize])
		for k := 0; k < got/pageSize; k++ {
			ok[r.first+k] = true
		}
	}
	// 1. store
	ids := make([]CID, n)
	var keep []int
	var rejected []uint64
	for i := range addrs {
		if !ok[i] {
			continue
		}
		id, kind, err := e.pool.Put(t.group, pre[i*pageSize:(i+1)*pageSize])
		if err != nil {
			e.releaseAll(ids)
			return 0, err
		}
		if kind == mem.KindRaw && e.pool.Holders(id) == 1 {
			// incompressible and alone in the store: storing it frees
			// nothing, unless an identical page was seen (and left in its
			// process) before: then both are worth taking
			page := pre[i*pageSize : (i+1)*pageSize]
			if !e.shadow.seen(t, addrs[i], page, e) {
				e.pool.Release(id)
				rejected = append(rejected, addrs[i])
				continue
			}
		}
		ids[i] = id
		keep = append(keep, i)
	}
	epoch := e.epoch.Load()
	if len(rejected) > 0 {
		t.mu.Lock()
		for _, a := range rejected {
			c, k := t.pt.at(a, true, epoch)
			c.heat[k] = maxHeat
			c.seen[k] = epoch
		}
		t.st.rejected += int64(len(rejected))
		t.mu.Unlock()
	}
	if len(keep) == 0 {
		return 0, nil
	}
	kaddrs := make([]uint64, len(keep))
	for j, i := range keep {
		kaddrs[j] = addrs[i]
	}
	runs := runsOf(kaddrs)
	if len(runs) > maxRuns {
		runs = runs[:maxRuns]
		last := runs[len(runs)-1]
		for _, i := range keep[last.first+last.n:] {
			e.pool.Release(ids[i])
			ids[i] = NoCID
		}
		keep = keep[:last.first+last.n]
		kaddrs = kaddrs[:last.first+last.n]
	}
	slot := func(j int) uint64 { return t.staging + uint64(j)*pageSize }
	// 2. journal the slots, mark the pages in flight, move them out
	e.journal.StageRun(t.id, slot(0), kaddrs)
	if err := e.journal.Flush(); err != nil {
		e.releaseAll(ids)
		return 0, err
	}
	t.mu.Lock()
	if t.gone || t.stopping {
		t.mu.Unlock()
		e.releaseAll(ids)
		return 0, nil
	}
	for j, a := range kaddrs {
		t.pending[a] = slot(j)
	}
	t.mu.Unlock()
	args := make([]byte, len(runs)*moveArgSize)
	calls := make([]ptrace.Syscall, len(runs))
	le := binary.LittleEndian
	for k, r := range runs {
		b := args[k*moveArgSize:]
		le.PutUint64(b[0:], slot(r.first))
		le.PutUint64(b[8:], r.addr)
		le.PutUint64(b[16:], uint64(r.n)*pageSize)
		le.PutUint64(b[24:], linux.UffdMoveAllowSrcHoles)
		calls[k] = ptrace.Syscall{Nr: sysIoctl, Args: [6]uint64{uint64(t.remoteFd), uffdioMoveCmd, t.ctl + uint64(k)*moveArgSize}}
	}
	moveErr := e.run(t, calls, func() error { return linux.TraceeWrite(t.pid, t.ctl, args) })
	// 3. which slots got their page, and is it what was stored?
	present := t.presentSlots(len(kaddrs))
	post := make([]byte, pageSize)
	for j, i := range keep {
		if !present[j] {
			continue
		}
		if _, err := linux.ReadProcessMemory(t.pid, slot(j), post); err != nil {
			present[j] = false
			continue
		}
		if !bytes.Equal(post, pre[i*pageSize:(i+1)*pageSize]) {
			id, _, err := e.pool.Put(t.group, post)
			if err != nil {
				present[j] = false
				continue
			}
			e.pool.Release(ids[i])
			ids[i] = id
		}
	}
	// 4. commit: what is still in flight is now held
	moved := 0
	busy := 0
	t.mu.Lock()
	holders := append([]*target{t}, t.forks...)
	var maps mapRuns
	t.forks = nil
	for j, i := range keep {
		a, s := kaddrs[j], slot(j)
		committed := false
		for _, h := range holders {
			if h == t {
				if cur, ok := h.pending[a]; !ok || cur != s {
					continue
				}
				delete(h.pending, a)
			} else {
				// a fork child's inherited copy (h.mu: children share
				// nothing with t's lock, so take theirs)
				h.mu.Lock()
				_, ok := h.inherited[a]
				delete(h.inherited, a)
				if ok && present[j] {
					e.pool.Acquire(ids[i])
					h.pt.set(a, ids[i], epoch)
					h.st.held++
					// journaled under h.mu: h's serve loop may take the page back
					// (and journal that) as soon as h.mu is released
					e.journal.Map(h.id, a, ids[i])
				}
				h.mu.Unlock()
				continue
			}
			if !present[j] {
				continue
			}
			h.pt.set(a, ids[i], epoch)
			c, k := h.pt.at(a, true, epoch)
			c.seen[k] = epoch
			h.st.held++
			h.st.evicted++
			maps.add(h.id, a, ids[i])
			if h == t {
				committed = true
			}
		}
		if committed {
			moved++
			continue
		}
		if !present[j] {
			busy++ // a hole, or shared after a fork (EBUSY)
			c, k := t.pt.at(a, true, epoch)
			if c.heat[k] < maxHeat {
				c.heat[k]++
			}
		}
		e.pool.Release(ids[i])
	}
	t.st.busy += int64(busy)
	// journaled before t.mu is released, for the same reason: the records
	// of a fault served on one of these pages must come after its Map
	maps.write(e.journal)
	t.mu.Unlock()
	if err := e.journal.Flush(); err != nil {
		return moved, err
	}
	// 5. free the staging area
	ferr := e.freeStaging(t, len(kaddrs))
	e.journal.UnstageRun(t.id, slot(0), len(kaddrs))
	if moveErr != nil {
		return moved, fmt.Errorf("move pages out: %w", moveErr)
	}
	return moved, ferr
}

func (e *Engine) releaseAll(ids []CID) {
	for _, id := range ids {
		e.pool.Release(id)
	}
}

// presentSlots reports which of the first n staging slots hold a page.
func (t *target) presentSlots(n int) []bool {
	out := make([]bool, n)
	if t.pagemap == nil {
		return out
	}
	regs, _, err := linux.ScanPagemap(t.pagemap, linux.PagemapScan{
		Start: t.staging, End: t.staging + uint64(n)*pageSize,
		Mask: linux.PageIsPresent, Return: linux.PageIsPresent,
	}, make([]linux.PageRegion, n))
	if err != nil {
		return out
	}
	for _, r := range regs {
		for a := r.Start; a < r.End; a += pageSize {
			if j := int((a - t.staging) / pageSize); j < n {
				out[j] = true
			}
		}
	}
	return out
}

// freeStaging drops the first n staging slots (and the probe slot) in the
// process. The REMOVE event this raises is the engine's own and ignored.
func (e *Engine) freeStaging(t *target, n int) error {
	calls := []ptrace.Syscall{
		{Nr: sysMadvise, Args: [6]uint64{t.staging, uint64(n) * pageSize, madvDontneed}},
		{Nr: sysMadvise, Args: [6]uint64{t.staging + maxBatch*pageSize, pageSize, madvDontneed}},
	}
	if err := e.run(t, calls, nil); err != nil {
		return err
	}
	return calls[0].Err()
}

// run runs calls in t's process: on its agent thread, or, without one,
// through a held thread; prepare (if any) writes what they read first.
// On the injector thread.
func (e *Engine) run(t *target, calls []ptrace.Syscall, prepare func() error) error {
	if prepare != nil {
		if err := prepare(); err != nil {
			return err
		}
	}
	if t.agent != nil {
		err := t.agent.Run(calls, 30*time.Second)
		if !errors.Is(err, ptrace.ErrAgentGone) {
			return err
		}
		// the process closed the agent's pipes or the thread died: fall
		// back to a held thread, and try a new agent at the next turn
		e.log.Warn("agent thread gone", "target", t.String(), "err", err)
		t.agent.Close()
		t.agent = nil
		t.wantAgent = true
	}
	return e.inject(t, func(a *ptrace.Attached) error { return a.Batch(calls) })
}

// startAgent starts an agent in t (on the injector thread).
func (e *Engine) startAgent(t *target) {
	err := e.inject(t, func(a *ptrace.Attached) error {
		ag, err := a.StartAgent(t.pid, t.ctl+movePages*pageSize)
		if err == nil {
			t.agent = ag
		}
		return err
	})
	t.wantAgent = false
	if err != nil {
		e.log.Warn("no agent thread; calls go through a held thread", "target", t.String(), "err", err)
	}
}

// inject runs f with one thread of t held (on the injector thread).
func (e *Engine) inject(t *target, f func(a *ptrace.Attached) error) error {
	a, err := ptrace.Attach(t.pid)
	if err != nil {
		return err
	}
	err = f(a)
	if derr := a.Detach(); err == nil {
		err = derr
	}
	return err
}

// mapRuns collects held pages into runs of consecutive addresses per
// target, for compact journal records.
type mapRuns struct {
	runs []mapRun
}

type mapRun struct {
	target uint32
	addr   uint64
	ids    []CID
}

func (m *mapRuns) add(target uint32, addr uint64, id CID) {
	for k := len(m.runs) - 1; k >= 0; k-- {
		r := &m.runs[k]
		if r.target == target {
			if r.addr+uint64(len(r.ids))*pageSize == addr {
				r.ids = append(r.ids, id)
				return
			}
			break
		}
	}
	m.runs = append(m.runs, mapRun{target, addr, []CID{id}})
}

func (m *mapRuns) write(j *Journal) {
	for _, r := range m.runs {
		j.MapRun(r.target, r.addr, r.ids)
	}
}
