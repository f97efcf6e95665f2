package live

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/vmux/vmux/internal/linux"
)

// The journal grows with every page that leaves or comes back. When it
// is much larger than the state it describes, it is replaced by a
// snapshot of that state: written to a new file, renamed over the
// journal, appended to from then on.

const compactAt = 4 << 20

// compactIfNeeded snapshots the journal when it has grown past compactAt
// and four times what a snapshot would take. On the injector thread.
func (e *Engine) compactIfNeeded() {
	if e.journal.Size() < compactAt {
		return
	}
	est := e.pool.Stats().Contents*50 + 64
	e.mu.Lock()
	for _, t := range e.targets {
		t.mu.Lock()
		est += t.st.held*5 + 128
		t.mu.Unlock()
	}
	e.mu.Unlock()
	if e.journal.Size() < 2*est {
		return
	}
	if err := e.snapshot(); err != nil {
		e.log.Error("compacting the journal", "err", err)
	}
}

// snapshot replaces the journal with one describing the current state.
// Every lock is held while it is written, so the state cannot move.
func (e *Engine) snapshot() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ts := make([]*target, 0, len(e.targets))
	for _, t := range e.targets {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].id < ts[j].id })
	for _, t := range ts {
		t.mu.Lock()
		defer t.mu.Unlock()
	}
	e.pool.mu.Lock()
	defer e.pool.mu.Unlock()
	j := e.journal
	j.mu.Lock()
	defer j.mu.Unlock()
	// what is buffered describes changes the state already has: written
	// to the old file, it changes nothing
	if len(j.buf) > 0 {
		if _, err := j.f.WriteAt(j.buf, j.size); err != nil {
			return fmt.Errorf("flush live journal: %w", err)
		}
		j.buf = j.buf[:0]
	}
	path := filepath.Join(e.cfg.Dir, journalFile)
	tmp := path + ".new"
	f, err := linux.OpenOwnerOnly(tmp, true)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return err
	}
	nj := &Journal{f: f}
	nj.header(e.cfg.Mem)
	// contents, references before the patches that use them
	ids := make([]CID, 0, len(e.pool.contents))
	for id := firstCID; int(id) < len(e.pool.contents); id++ {
		if e.pool.contents[id].refs > 0 {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		c := &e.pool.contents[id]
		nj.Put(id, &Content{Kind: c.kind, Group: c.group, Ref: c.ref, Hash: c.hash, Loc: c.loc, NFeat: c.nfeat, Feat: c.feat})
	}
	for _, t := range ts {
		if t.gone {
			continue
		}
		nj.Target(t.record())
		var runs mapRuns
		t.pt.each(0, ^uint64(0), func(a uint64, id CID) { runs.add(t.id, a, id) })
		runs.write(nj)
		for a, s := range t.pending {
			nj.Stage(t.id, s, a)
		}
		if len(nj.buf) > 1<<20 {
			if err := nj.Flush(); err != nil {
				f.Close()
				os.Remove(tmp)
				return err
			}
		}
	}
	if err := nj.Flush(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("replace live journal: %w", err)
	}
	j.f.Close()
	j.f, j.size = f, nj.size
	return nil
}
