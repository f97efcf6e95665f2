package live

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/similar"
	"github.com/vmux/vmux/mem/source"
)

// Recover starts an engine over the state a dead engine left: it replays
// the journal, takes each process's userfaultfd again from the process
// itself (where it stayed open, so the faults of the dead engine's time
// waited instead of reading zeros), wakes the threads whose faults the
// dead engine had read but not served, puts back the pages that were in
// flight in a staging area, and serves every held page again. The
// engine configuration is the journal's; cfg gives the rest.
func Recover(cfg Config) (*Engine, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	jpath := filepath.Join(cfg.Dir, journalFile)
	if _, err := os.Lstat(jpath); errors.Is(err, os.ErrNotExist) {
		return nil, ErrNothingToRecover
	}
	e, err := open(cfg)
	if err != nil {
		return nil, err
	}
	st, err := Replay(jpath)
	if err != nil {
		e.dir.Close()
		return nil, err
	}
	cfg.Mem.Detector, cfg.Mem.Codec, cfg.Mem.CrossDomain = st.Config.Detector, st.Config.Codec, st.Config.CrossDomain
	if e.cfg.Mem, err = mem.Normalize(cfg.Mem); err != nil {
		e.dir.Close()
		return nil, err
	}
	if e.payloads, err = OpenFilePayloads(filepath.Join(cfg.Dir, payloadFile)); err != nil {
		e.dir.Close()
		return nil, err
	}
	// the journal stays as it is until the snapshot below replaces it
	if e.journal, err = OpenJournal(jpath, st.Size); err != nil {
		e.closeStore()
		return nil, err
	}
	if e.pool, err = NewPool(e.cfg.Mem, e.payloads, e.poolHooks()); err != nil {
		e.closeStore()
		return nil, err
	}
	// which targets can be served again
	var ts []*target
	holders := map[CID]int32{}
	for _, id := range st.Order {
		rt := st.Targets[id]
		if rt.Gone {
			continue
		}
		t, err := e.reopen(rt)
		if err != nil {
			if len(rt.Held) > 0 {
				e.log.Warn("cannot serve a process again", "pid", rt.Pid, "name", rt.Name, "pages", len(rt.Held), "err", err)
			}
			continue
		}
		for _, c := range rt.Held {
			holders[c]++
		}
		ts = append(ts, t)
		if id >= e.nextID {
			e.nextID = id + 1
		}
	}
	locs := make([]Loc, 0, len(st.Contents))
	for _, c := range st.Contents {
		locs = append(locs, c.Loc)
	}
	if err := e.payloads.Restore(locs); err != nil {
		e.closeStore()
		return nil, err
	}
	if err := e.pool.restore(st.Contents, holders); err != nil {
		e.closeStore()
		return nil, err
	}
	e.start()
	for _, t := range ts {
		e.mu.Lock()
		e.targets[t.id] = t
		e.mu.Unlock()
		t.threshold = e.cfg.coldEpochs()
		if !e.cfg.Mem.CrossDomain {
			e.pool.setGroup(t.domain, t.group)
		}
	}
	if err := e.onInjector(e.snapshot); err != nil {
		e.log.Error("rewriting the journal", "err", err)
	}
	for _, t := range ts {
		if err := t.startLoop(); err != nil {
			e.log.Error("serving a recovered process", "target", t.String(), "err", err)
			continue
		}
		t.resume(st.Targets[t.id])
		e.log.Info("serving again", "target", t.String(), "pages", t.st.held)
	}
	return e, nil
}

// reopen takes a journaled process's uffd again.
func (e *Engine) reopen(rt *ReplayedTarget) (*target, error) {
	if rt.Pid == 0 {
		return nil, errors.New("a fork child the dead engine had not found: its uffd died with the engine")
	}
	pi, err := readProc(rt.Pid)
	if err != nil {
		return nil, err
	}
	if pi.start != rt.Start {
		return nil, fmt.Errorf("PID %d: %w", rt.Pid, ErrGone)
	}
	t := &target{e: e, id: rt.ID, pid: rt.Pid, start: rt.Start, name: rt.Name, domain: mem.Domain(rt.Domain),
		group: rt.Group, remoteFd: rt.RemoteFd, staging: rt.Staging, ctl: rt.Ctl, pidfd: -1,
		pt: newPageTable(), pending: map[uint64]uint64{}, rssBefore: pi.rss, dirtyStg: true,
		wantAgent: true} // the dead engine's agent read end-of-file and exited: a new one
	if err := t.open(); err != nil {
		return nil, err
	}
	if t.remoteFd < 0 || !isUffdIn(t.pid, t.remoteFd) {
		t.closeFiles()
		return nil, fmt.Errorf("the process no longer has its userfaultfd (fd %d)", t.remoteFd)
	}
	fd, err := linux.PidfdGetfd(t.pidfd, t.remoteFd)
	if err != nil {
		t.closeFiles()
		return nil, err
	}
	t.uffd = linux.NewUffd(fd)
	epoch := e.epoch.Load()
	for a, id := range rt.Held {
		t.pt.set(a, id, epoch)
	}
	t.st.held = int64(len(rt.Held))
	if t.ranges, err = registered(t.pid); err != nil {
		t.closeFiles()
		return nil, err
	}
	return t, nil
}

// resume (on a recovered target) wakes every thread that may wait on a
// fault the dead engine read, and puts back pages caught in flight.
func (t *target) resume(rt *ReplayedTarget) {
	t.mu.Lock()
	rs := append(spans(nil), t.ranges...)
	t.mu.Unlock()
	for _, r := range rs {
		_ = t.uffd.Wake(r.start, r.end-r.start)
	}
	if len(rt.Staged) == 0 {
		return
	}
	staged := rt.Staged
	t.do(func() {
		page := make([]byte, pageSize)
		for addr, slot := range staged {
			if t.pt.held(addr) != NoCID || !t.slotPresent(slot) {
				continue // stored, or never moved
			}
			if _, err := linux.ReadProcessMemory(t.pid, slot, page); err != nil {
				t.e.log.Error("recovering a page in flight", "target", t.String(), "addr", addr, "err", err)
				continue
			}
			if err := t.copyIn(addr, page, true); err != nil && !isExist(err) {
				t.e.log.Error("recovering a page in flight", "target", t.String(), "addr", addr, "err", err)
			}
		}
	})
}

// registered reads the ranges of pid registered with a userfaultfd (the
// "um" flag of smaps' VmFlags).
func registered(pid int) (spans, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		return nil, err
	}
	var out spans
	var cur source.Mapping
	have := false
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			if m, err := source.ParseMaps(strings.NewReader(line)); err == nil && len(m) == 1 {
				cur, have = m[0], true
			}
			continue
		}
		if v, ok := strings.CutPrefix(line, "VmFlags:"); ok && have {
			for _, fl := range strings.Fields(v) {
				if fl == "um" && manageable(cur) {
					out = out.add(cur.Start, cur.End)
				}
			}
		}
	}
	return out, nil
}

// restore rebuilds the pool from replayed contents; holders counts the
// held pages of each. Contents nothing uses any more are freed.
func (p *Pool) restore(cs map[CID]Content, holders map[CID]int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	maxID := firstCID
	for id := range cs {
		if id >= maxID {
			maxID = id + 1
		}
	}
	p.contents = make([]content, maxID)
	page := make([]byte, pageSize)
	refs := map[CID]int32{}
	for id, c := range cs {
		refs[id] += holders[id]
		if c.Kind == mem.KindPatched {
			if _, ok := cs[c.Ref]; !ok {
				return fmt.Errorf("patched content %d without its reference %d: %w", id, c.Ref, ErrJournalCorrupt)
			}
			refs[c.Ref]++
		}
	}
	for id, c := range cs {
		if refs[id] == 0 {
			continue
		}
		ct := &p.contents[id]
		*ct = content{refs: refs[id], holders: holders[id], kind: c.Kind, group: c.Group, ref: c.Ref,
			hash: c.Hash, loc: c.Loc, nfeat: c.NFeat, feat: c.Feat}
		k := hashKey{c.Group, c.Hash}
		if _, taken := p.byHash[k]; !taken {
			p.byHash[k] = id
			ct.indexed = true
		}
		if c.Kind != mem.KindPatched {
			// a possible reference: index it again (its features are not
			// journaled; computing them costs a decode per content)
			det, err := p.detector(c.Group)
			if err != nil {
				return err
			}
			if err := p.decodeWhole(ct, page); err != nil {
				return fmt.Errorf("recover content %d: %w", id, err)
			}
			var f similar.Features
			det.Features(page, &f)
			ct.nfeat = uint8(min(f.N, maxFeatures))
			copy(ct.feat[:], f.H[:ct.nfeat])
			if f.N = int(ct.nfeat); f.N > 0 {
				det.Insert(&f, uint32(id))
			}
		}
		p.count(c.Kind, 1, int64(c.Loc.Len))
		p.st.Holders += int64(holders[id])
	}
	for id := firstCID; id < maxID; id++ {
		if p.contents[id].refs == 0 {
			if c, ok := cs[id]; ok {
				p.payloads.Free(c.Loc)
			}
			p.free = append(p.free, id)
		}
	}
	// a patch whose content went keeps its reference counted above; undo
	for id, c := range cs {
		if refs[id] == 0 && c.Kind == mem.KindPatched {
			p.releaseLocked(c.Ref)
		}
	}
	return nil
}

func isExist(err error) bool { return errors.Is(err, syscall.EEXIST) }
