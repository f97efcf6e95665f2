package live

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem"
)

// The journal is the live store's metadata, appended in order: what a
// recovering engine replays to know every held page's content and where
// each content's payload is. Records are
//
//	u32 n | u8 type | body (n-1 bytes) | u32 sum32(type, body)
//
// little-endian. Replay stops at the first record that is short or fails
// its checksum (the tail of a write cut by a kill); everything before it
// is consistent because records are written in the order things happened
// and a page is only freed in a process after its records are written.
const (
	recHeader     = 1  // u32 version, string config (detector, codec, cross)
	recTarget     = 2  // u32 id, u32 pid, u64 start, i32 remote fd, u64 staging, u32 staging pages, u64 ctl, u32 group, string name, string domain
	recTargetGone = 3  // u32 id
	recPut        = 4  // u32 cid, u8 kind, i32 group, u32 ref, u64 hash, u64 off, u32 len, u32 sum
	recFree       = 5  // u32 cid
	recMap        = 6  // u32 target, u64 addr, u32 cid
	recUnmap      = 7  // u32 target, u64 addr
	recStage      = 8  // u32 target, u64 slot, u64 addr
	recUnstage    = 9  // u32 target, u64 slot, u64 addr
	recFork       = 10 // u32 parent, u32 child (then the child's recTarget)
	recRemap      = 11 // u32 target, u64 from, u64 to, u64 len
	recRemove     = 12 // u32 target, u64 start, u64 end
	recStageRun   = 13 // u32 target, u64 first slot, u32 n, n x u64 addr (slots consecutive)
	recUnstageRun = 14 // u32 target, u64 first slot, u32 n
	recMapRun     = 15 // u32 target, u64 first addr, u32 n, n x u32 cid (addresses consecutive)
)

const journalVersion = 2 // 2: runs (StageRun, UnstageRun, MapRun), no features in recPut

// maxRecord bounds one record's body (a run of a batch's pages).
const maxRecord = 64 << 10

// enc builds one record.
type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) str(s string) {
	if len(s) > 1024 {
		s = s[:1024]
	}
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
}

// dec reads one record's body.
type dec struct {
	b   []byte
	bad bool
}

func (d *dec) take(n int) []byte {
	if d.bad || len(d.b) < n {
		d.bad = true
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
func (d *dec) u8() uint8   { return d.take(1)[0] }
func (d *dec) u32() uint32 { return binary.LittleEndian.Uint32(d.take(4)) }
func (d *dec) u64() uint64 { return binary.LittleEndian.Uint64(d.take(8)) }
func (d *dec) str() string {
	n := d.u32()
	if n > maxRecord {
		d.bad = true
		return ""
	}
	return string(d.take(int(n)))
}

// Journal appends records to the journal file. Records are buffered and
// written by Flush (in one write, in order).
type Journal struct {
	mu   sync.Mutex
	f    *os.File
	buf  []byte
	size int64
}

// CreateJournal creates a fresh journal at path (replacing any) with a
// header for cfg.
func CreateJournal(path string, cfg mem.Config) (*Journal, error) {
	f, err := linux.OpenOwnerOnly(path, true)
	if err != nil {
		return nil, fmt.Errorf("create live journal: %w", err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("create live journal: %w", err)
	}
	j := &Journal{f: f}
	j.header(cfg)
	return j, j.Flush()
}

func (j *Journal) header(cfg mem.Config) {
	var e enc
	e.u32(journalVersion)
	e.str(cfg.Detector)
	e.str(cfg.Codec)
	cross := uint8(0)
	if cfg.CrossDomain {
		cross = 1
	}
	e.u8(cross)
	j.add(recHeader, e.b)
}

// OpenJournal opens an existing journal to append to it, at size (the end
// of its last good record, from Replay: a torn tail is cut off).
func OpenJournal(path string, size int64) (*Journal, error) {
	f, err := linux.OpenOwnerOnly(path, false)
	if err != nil {
		return nil, fmt.Errorf("open live journal: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("open live journal: %w", err)
	}
	return &Journal{f: f, size: size}, nil
}

// add appends one record to the buffer; the caller holds j.mu or owns j.
func (j *Journal) add(typ uint8, body []byte) {
	start := len(j.buf)
	j.buf = binary.LittleEndian.AppendUint32(j.buf, uint32(len(body)+1))
	j.buf = append(j.buf, typ)
	j.buf = append(j.buf, body...)
	j.buf = binary.LittleEndian.AppendUint32(j.buf, sum32(j.buf[start+4:]))
}

// Add appends one record (written by the next Flush).
func (j *Journal) Add(typ uint8, body []byte) {
	j.mu.Lock()
	j.add(typ, body)
	j.mu.Unlock()
}

// Flush writes the buffered records.
func (j *Journal) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.buf) == 0 {
		return nil
	}
	n, err := j.f.WriteAt(j.buf, j.size)
	j.size += int64(n)
	if err != nil {
		return fmt.Errorf("write live journal: %w", err)
	}
	j.buf = j.buf[:0]
	return nil
}

// Size is the bytes written so far.
func (j *Journal) Size() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.size
}

// Close flushes and closes the journal.
func (j *Journal) Close() error {
	err := j.Flush()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Typed appenders.

func (j *Journal) Target(t *TargetRecord) {
	var e enc
	e.u32(t.ID)
	e.u32(uint32(t.Pid))
	e.u64(t.Start)
	e.u32(uint32(int32(t.RemoteFd)))
	e.u64(t.Staging)
	e.u32(uint32(t.StagingPages))
	e.u64(t.Ctl)
	e.u32(uint32(t.Group))
	e.str(t.Name)
	e.str(t.Domain)
	j.Add(recTarget, e.b)
}

func (j *Journal) one32(typ uint8, v uint32) {
	var e enc
	e.u32(v)
	j.Add(typ, e.b)
}

func (j *Journal) TargetGone(id uint32) { j.one32(recTargetGone, id) }

// Put records a content (called from the pool's hook, which holds the
// pool's mutex; the journal has its own).
func (j *Journal) Put(id CID, c *Content) {
	var e enc
	e.u32(uint32(id))
	e.u8(uint8(c.Kind))
	e.u32(uint32(c.Group))
	e.u32(uint32(c.Ref))
	e.u64(c.Hash)
	e.u64(c.Loc.Off)
	e.u32(c.Loc.Len)
	e.u32(c.Loc.Sum)
	// (detector features are not journaled: recovery computes them again)
	j.Add(recPut, e.b)
}

// StageRun records that the pages addrs are moved to the consecutive
// staging slots from slot.
func (j *Journal) StageRun(target uint32, slot uint64, addrs []uint64) {
	var e enc
	e.u32(target)
	e.u64(slot)
	e.u32(uint32(len(addrs)))
	for _, a := range addrs {
		e.u64(a)
	}
	j.Add(recStageRun, e.b)
}

// UnstageRun records that n staging slots from slot are empty again.
func (j *Journal) UnstageRun(target uint32, slot uint64, n int) {
	var e enc
	e.u32(target)
	e.u64(slot)
	e.u32(uint32(n))
	j.Add(recUnstageRun, e.b)
}

// MapRun records the consecutive pages from addr as held with ids.
func (j *Journal) MapRun(target uint32, addr uint64, ids []CID) {
	for len(ids) > 0 {
		n := min(len(ids), 8192)
		var e enc
		e.u32(target)
		e.u64(addr)
		e.u32(uint32(n))
		for _, id := range ids[:n] {
			e.u32(uint32(id))
		}
		j.Add(recMapRun, e.b)
		addr += uint64(n) * pageSize
		ids = ids[n:]
	}
}

func (j *Journal) Free(id CID) { j.one32(recFree, uint32(id)) }

func (j *Journal) Map(target uint32, addr uint64, id CID) {
	var e enc
	e.u32(target)
	e.u64(addr)
	e.u32(uint32(id))
	j.Add(recMap, e.b)
}

func (j *Journal) Unmap(target uint32, addr uint64) {
	var e enc
	e.u32(target)
	e.u64(addr)
	j.Add(recUnmap, e.b)
}

func (j *Journal) Stage(target uint32, slot, addr uint64) {
	var e enc
	e.u32(target)
	e.u64(slot)
	e.u64(addr)
	j.Add(recStage, e.b)
}

func (j *Journal) Unstage(target uint32, slot, addr uint64) {
	var e enc
	e.u32(target)
	e.u64(slot)
	e.u64(addr)
	j.Add(recUnstage, e.b)
}

func (j *Journal) Fork(parent, child uint32) {
	var e enc
	e.u32(parent)
	e.u32(child)
	j.Add(recFork, e.b)
}

func (j *Journal) Remap(target uint32, from, to, n uint64) {
	var e enc
	e.u32(target)
	e.u64(from)
	e.u64(to)
	e.u64(n)
	j.Add(recRemap, e.b)
}

func (j *Journal) Remove(target uint32, start, end uint64) {
	var e enc
	e.u32(target)
	e.u64(start)
	e.u64(end)
	j.Add(recRemove, e.b)
}

// TargetRecord is what the journal keeps of an attached process.
type TargetRecord struct {
	ID           uint32
	Pid          int
	Start        uint64 // start time (clock ticks), against PID reuse
	RemoteFd     int    // the uffd's number inside the process (-1: none)
	Staging      uint64 // the staging area in the process
	StagingPages int
	Ctl          uint64 // the control page in the process
	Group        int32
	Name         string
	Domain       string
}

// ReplayedTarget is a target as the journal leaves it.
type ReplayedTarget struct {
	TargetRecord
	Held map[uint64]CID // page address -> content
	// Staged are pages moved to a staging slot whose fate the journal
	// does not tell (no later record for their address): page address ->
	// slot. A recovering engine puts them back from the slot.
	Staged map[uint64]uint64
	Gone   bool
}

// Replayed is the state a journal describes.
type Replayed struct {
	Config   mem.Config
	Contents map[CID]Content
	Targets  map[uint32]*ReplayedTarget
	Order    []uint32 // target ids in the order they were added
	// Size is where the last good record ends (the torn tail is beyond).
	Size int64
	// Torn is set when replay stopped at a bad record before the end.
	Torn bool
}

// Replay reads the journal at path.
func Replay(path string) (*Replayed, error) {
	f, err := linux.OpenOwnerOnly(path, false)
	if err != nil {
		return nil, fmt.Errorf("replay live journal: %w", err)
	}
	defer f.Close()
	st := &Replayed{Contents: map[CID]Content{}, Targets: map[uint32]*ReplayedTarget{}}
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [5]byte
	first := true
	for {
		if _, err := io.ReadFull(r, hdr[:4]); err != nil {
			if !errors.Is(err, io.EOF) {
				st.Torn = true
			}
			break
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		if n == 0 || n > maxRecord+1 {
			st.Torn = true
			break
		}
		rec := make([]byte, n+4)
		if _, err := io.ReadFull(r, rec); err != nil {
			st.Torn = true
			break
		}
		body, sum := rec[:n], binary.LittleEndian.Uint32(rec[n:])
		if sum32(body) != sum {
			st.Torn = true
			break
		}
		if first && body[0] != recHeader {
			return nil, fmt.Errorf("replay live journal: no header: %w", ErrJournalCorrupt)
		}
		first = false
		if err := st.apply(body[0], &dec{b: body[1:]}); err != nil {
			return nil, fmt.Errorf("replay live journal at %d: %w", st.Size, err)
		}
		st.Size += int64(4 + n + 4)
	}
	if first {
		return nil, fmt.Errorf("replay live journal: empty: %w", ErrJournalCorrupt)
	}
	return st, nil
}

func (st *Replayed) target(id uint32) (*ReplayedTarget, error) {
	t, ok := st.Targets[id]
	if !ok {
		return nil, fmt.Errorf("record for unknown target %d: %w", id, ErrJournalCorrupt)
	}
	return t, nil
}

func (st *Replayed) apply(typ uint8, d *dec) error {
	switch typ {
	case recHeader:
		if v := d.u32(); v != journalVersion {
			return fmt.Errorf("journal version %d, this vmux reads %d: %w", v, journalVersion, ErrJournalCorrupt)
		}
		st.Config.Detector, st.Config.Codec = d.str(), d.str()
		st.Config.CrossDomain = d.u8() == 1
	case recTarget:
		t := &ReplayedTarget{Held: map[uint64]CID{}, Staged: map[uint64]uint64{}}
		t.ID, t.Pid, t.Start = d.u32(), int(d.u32()), d.u64()
		t.RemoteFd = int(int32(d.u32()))
		t.Staging, t.StagingPages, t.Ctl = d.u64(), int(d.u32()), d.u64()
		t.Group = int32(d.u32())
		t.Name, t.Domain = d.str(), d.str()
		if old, ok := st.Targets[t.ID]; ok {
			// a child's record after its fork: same held pages, now with
			// its process known
			t.Held, t.Staged = old.Held, old.Staged
		} else {
			st.Order = append(st.Order, t.ID)
		}
		st.Targets[t.ID] = t
	case recTargetGone:
		t, err := st.target(d.u32())
		if err != nil {
			return err
		}
		t.Gone, t.Held, t.Staged = true, map[uint64]CID{}, map[uint64]uint64{}
	case recPut:
		id := CID(d.u32())
		var c Content
		c.Kind = mem.Kind(d.u8())
		c.Group = int32(d.u32())
		c.Ref = CID(d.u32())
		c.Hash = d.u64()
		c.Loc = Loc{Off: d.u64(), Len: d.u32(), Sum: d.u32()}
		st.Contents[id] = c
	case recFree:
		delete(st.Contents, CID(d.u32()))
	case recMap:
		t, err := st.target(d.u32())
		if err != nil {
			return err
		}
		addr, id := d.u64(), CID(d.u32())
		t.Held[addr] = id
		delete(t.Staged, addr)
	case recUnmap:
		t, err := st.target(d.u32())
		if err != nil {
			return err
		}
		addr := d.u64()
		delete(t.Held, addr)
		delete(t.Staged, addr)
	case recStage:
		t, err := st.target(d.u32())
		if err != nil {
			return err
		}
		slot, addr := d.u64(), d.u64()
		t.Staged[addr] = slot
	case recUnstage:
		t, err := st.target(d.u32())
		if err != nil {
			return err
		}
		slot, addr := d.u64(), d.u64()
		if t.Staged[addr] == slot {
			delete(t.Staged, addr)
		}
	case recFork:
		p, err := st.target(d.u32())
		if err != nil {
			return err
		}
		c := &ReplayedTarget{TargetRecord: p.TargetRecord, Held: map[uint64]CID{}, Staged: map[uint64]uint64{}}
		c.ID, c.Pid, c.RemoteFd = d.u32(), 0, -1
		for a, id := range p.Held {
			c.Held[a] = id
		}
		for a, s := range p.Staged {
			c.Staged[a] = s
		}
		st.Targets[c.ID] = c
		st.Order = append(st.Order, c.ID)
	case recStageRun:
		t, err := st.target(d.u32())
		if err != nil {
			return err
		}
		slot, n := d.u64(), d.u32()
		if n > maxRecord/8 {
			return fmt.Errorf("stage run of %d: %w", n, ErrJournalCorrupt)
		}
		for i := uint32(0); i < n; i++ {
			t.Staged[d.u64()] = slot + uint64(i)*pageSize
		}
	case recUnstageRun:
		t, err := st.target(d.u32())
		if err != nil {
			return err
		}
		slot, n := d.u64(), uint64(d.u32())
		for a, s := range t.Staged {
			if s >= slot && s < slot+n*pageSize {
				delete(t.Staged, a)
			}
		}
	case recMapRun:
		t, err := st.target(d.u32())
		if err != nil {
			return err
		}
		addr, n := d.u64(), d.u32()
		if n > maxRecord/4 {
			return fmt.Errorf("map run of %d: %w", n, ErrJournalCorrupt)
		}
		for i := uint32(0); i < n; i++ {
			a := addr + uint64(i)*pageSize
			t.Held[a] = CID(d.u32())
			delete(t.Staged, a)
		}
	case recRemap:
		t, err := st.target(d.u32())
		if err != nil {
			return err
		}
		from, to, n := d.u64(), d.u64(), d.u64()
		moved := map[uint64]CID{}
		for a, id := range t.Held {
			if a >= from && a < from+n {
				moved[to+(a-from)] = id
				delete(t.Held, a)
			}
		}
		for a, id := range moved {
			t.Held[a] = id
		}
	case recRemove:
		t, err := st.target(d.u32())
		if err != nil {
			return err
		}
		start, end := d.u64(), d.u64()
		for a := range t.Held {
			if a >= start && a < end {
				delete(t.Held, a)
			}
		}
		for a := range t.Staged {
			if a >= start && a < end {
				delete(t.Staged, a)
			}
		}
	default:
		return fmt.Errorf("unknown record type %d: %w", typ, ErrJournalCorrupt)
	}
	if d.bad {
		return fmt.Errorf("short record of type %d: %w", typ, ErrJournalCorrupt)
	}
	return nil
}
