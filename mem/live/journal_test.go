package live

import (
	"path/filepath"
	"testing"

	"github.com/vmux/vmux/mem"
)

// TestJournalRuns: a batch's run records replay as the per-page records
// did: staged pages are in flight until mapped, a run's unstage clears
// only its own slots, a map run holds every page of the run (in chunks
// past one record's bound), and a reopened journal appends after them.
func TestJournalRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := CreateJournal(path, mem.Config{Codec: "lz4"})
	if err != nil {
		t.Fatal(err)
	}
	j.Target(&TargetRecord{ID: 1, Pid: 100, RemoteFd: 3, Staging: 1 << 40, StagingPages: 512, Name: "a", Domain: "d"})
	j.Put(7, &Content{Kind: mem.KindCompressed, Hash: 9, Loc: Loc{Off: 4096, Len: 100, Sum: 5}})
	const base = 0x10000000
	addrs := []uint64{base, base + pageSize, base + 5*pageSize}
	j.StageRun(1, 1<<40, addrs)
	// a second batch in other slots, never finished: stays staged
	j.StageRun(1, 1<<40+8*pageSize, []uint64{base + 9*pageSize})
	ids := make([]CID, 10000) // more than one record's worth
	for i := range ids {
		ids[i] = 7
	}
	j.MapRun(1, base, ids[:2])
	j.UnstageRun(1, 1<<40, 3)
	j.MapRun(1, base+(1<<30), ids)
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	st, err := Replay(path)
	if err != nil {
		t.Fatal(err)
	}
	tg := st.Targets[1]
	if tg == nil || st.Torn {
		t.Fatalf("replay: %+v torn %v", st.Targets, st.Torn)
	}
	if tg.Held[base] != 7 || tg.Held[base+pageSize] != 7 || len(tg.Held) != 2+len(ids) {
		t.Fatalf("held %d pages, base %d", len(tg.Held), tg.Held[base])
	}
	if tg.Held[base+(1<<30)+uint64(len(ids)-1)*pageSize] != 7 {
		t.Fatal("the last page of a chunked map run is not held")
	}
	// base+5 pages was staged in the unstaged run and never mapped: its
	// fate is known (its slot was freed), the other batch's page is not
	if len(tg.Staged) != 1 || tg.Staged[base+9*pageSize] != 1<<40+8*pageSize {
		t.Fatalf("staged %v", tg.Staged)
	}
	if c := st.Contents[7]; c.Kind != mem.KindCompressed || c.Loc.Len != 100 || c.Hash != 9 {
		t.Fatalf("content %+v", c)
	}
	j, err = OpenJournal(path, st.Size)
	if err != nil {
		t.Fatal(err)
	}
	j.Unmap(1, base)
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	if st, err = Replay(path); err != nil || len(st.Targets[1].Held) != 1+len(ids) {
		t.Fatalf("after append: %v", err)
	}
}
