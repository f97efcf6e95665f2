package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/safefile"
	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/source"
	"github.com/zeebo/xxh3"
)

// Info describes a written store.
type Info struct {
	Path          string `json:"path"`
	FileBytes     int64  `json:"file_bytes"`
	PayloadBytes  int64  `json:"payload_bytes"`
	MetadataBytes int64  `json:"metadata_bytes"` // header, entries, index, footer
	Entries       int64  `json:"entries"`
}

// Write stores res (whose sources are described, in order, by metas) at
// path, atomically. ctx cancels a long write; the temp file is then removed.
// path must be absent or a regular file that is none of the sources
// (CheckOutput): the rename that puts the store in place would replace a
// device node or an input as readily as an old store.
func Write(ctx context.Context, path string, res *mem.Result, metas []Meta) (Info, error) {
	if len(res.Sources()) != len(metas) {
		return Info{}, fmt.Errorf("write store: %d sources but %d descriptions", len(res.Sources()), len(metas))
	}
	var inputs []source.Identity
	for _, m := range metas {
		inputs = append(inputs, m.Input)
	}
	if err := CheckOutput(path, inputs...); err != nil {
		return Info{}, err
	}
	dir := filepath.Dir(path)
	tmp, named, err := createTemp(dir, path)
	if err != nil {
		return Info{}, fmt.Errorf("create store: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			if named != "" {
				os.Remove(named)
			}
		}
	}()
	w := &writer{f: tmp, bw: bufio.NewWriterSize(tmp, 1<<20), res: res, ctx: ctx}
	info, err := w.write(metas)
	if err != nil {
		return Info{}, fmt.Errorf("write store %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, fmt.Errorf("sync store: %w", err)
	}
	if named == "" {
		// The unnamed file gets a fresh name only now, complete and synced,
		// and the rename below follows at once.
		named = filepath.Join(dir, fmt.Sprintf(".%s.tmp-%d-%d", filepath.Base(path), os.Getpid(), time.Now().UnixNano()))
		if err := linux.LinkUnnamed(tmp, named); err != nil {
			named = ""
			return Info{}, fmt.Errorf("name store: %w", err)
		}
	}
	if err := tmp.Close(); err != nil {
		return Info{}, fmt.Errorf("close store: %w", err)
	}
	if err := CheckOutput(path, inputs...); err != nil { // again: it may have changed while we wrote
		return Info{}, err
	}
	if err := os.Rename(named, path); err != nil {
		return Info{}, fmt.Errorf("rename store into place: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return Info{}, fmt.Errorf("sync directory %s: %w", dir, err)
		}
	}
	info.Path = path
	return info, nil
}

// CheckOutput fails unless a store may be written at path: nothing is
// there, or a regular file (not a symlink, device, FIFO or directory) that
// is none of inputs. pack calls it before analyzing, so a bad -o fails at
// once; Write calls it again before and after writing.
func CheckOutput(path string, inputs ...source.Identity) error {
	var files []os.FileInfo
	for _, in := range inputs {
		if in.File != nil {
			files = append(files, in.File)
		}
	}
	if err := safefile.CheckOutput(path, files...); err != nil {
		return fmt.Errorf("write store: %w", err)
	}
	return nil
}

// createTemp opens the file a store is written to before it is renamed to
// path: an unnamed file (O_TMPFILE) where dir's file system supports it, so a
// killed pack leaves nothing at all, else a hidden named temp file (named is
// then its path, which error paths remove).
func createTemp(dir, path string) (f *os.File, named string, err error) {
	f, err = linux.CreateUnnamed(dir, 0o600) // process memory: owner only
	if err == nil {
		return f, "", nil
	}
	if !errors.Is(err, linux.ErrNoUnnamedFiles) {
		return nil, "", err
	}
	f, err = os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, "", err
	}
	return f, f.Name(), nil
}

// beforeHeader, if set (by tests), runs when everything but the header has
// been written.
var beforeHeader func(tmp string)

type writer struct {
	f       *os.File
	bw      *bufio.Writer
	off     uint64
	res     *mem.Result
	ctx     context.Context
	x       index
	codecs  map[string]uint8
	entries []byte
}

func (w *writer) put(b []byte) (uint64, error) {
	off := w.off
	_, err := w.bw.Write(b)
	w.off += uint64(len(b))
	return off, err
}

func (w *writer) write(metas []Meta) (Info, error) {
	cfg := w.res.Stats
	w.x.detector, w.x.codec, w.x.cross = cfg.Detector, cfg.Codec, cfg.CrossDomain
	w.codecs = map[string]uint8{}
	if _, err := w.put(make([]byte, headerSize)); err != nil { // the header is written last
		return Info{}, err
	}
	infos := w.res.Sources()
	// Pass 1: runs, so that references can be turned into entry indexes.
	var next uint64
	for i, m := range metas {
		s := Source{Name: m.Name, Kind: m.Kind, Domain: m.Domain, FileSize: m.FileSize,
			Pages: uint64(infos[i].Pages), Regions: m.Regions, Skipped: m.Skipped}
		s.runs, next = w.runs(i, infos[i].Pages, next)
		w.x.sources = append(w.x.sources, s)
	}
	if next > uint64(noRef) {
		return Info{}, fmt.Errorf("%d page entries: more than the format's %d", next, noRef)
	}
	// Pass 2: payload and entries.
	var payload int64
	w.entries = make([]byte, 0, next*entrySize)
	for i := range w.x.sources {
		n, err := w.writeSource(i)
		if err != nil {
			return Info{}, err
		}
		payload += n
		for _, e := range metas[i].Residue {
			off, err := w.put(e.Data)
			if err != nil {
				return Info{}, err
			}
			payload += int64(len(e.Data))
			w.x.sources[i].Residue = append(w.x.sources[i].Residue,
				Residue{FileOff: e.Off, Len: uint64(len(e.Data)), off: off, sum: sum32(e.Data)})
		}
	}
	entryOff := w.off
	for b := 0; b < len(w.entries); b += blockBytes {
		w.x.blockSums = append(w.x.blockSums, xxh3.Hash(w.entries[b:min(b+blockBytes, len(w.entries))]))
	}
	if _, err := w.put(w.entries); err != nil {
		return Info{}, err
	}
	ix := w.x.encode()
	indexOff, err := w.put(ix)
	if err != nil {
		return Info{}, err
	}
	ft := make([]byte, footerSize)
	footer{indexOff: indexOff, indexLen: uint64(len(ix)), indexSum: xxh3.Hash(ix), entryOff: entryOff, nEntries: next}.put(ft)
	if _, err := w.put(ft); err != nil {
		return Info{}, err
	}
	if err := w.bw.Flush(); err != nil {
		return Info{}, err
	}
	if beforeHeader != nil {
		beforeHeader(w.f.Name())
	}
	hdr := make([]byte, headerSize)
	putHeader(hdr)
	if _, err := w.f.WriteAt(hdr, 0); err != nil {
		return Info{}, err
	}
	return Info{FileBytes: int64(w.off), PayloadBytes: payload,
		MetadataBytes: int64(w.off) - payload, Entries: int64(next)}, nil
}

// runs splits source src's pages into zero runs and entry runs.
func (w *writer) runs(src int, pages int64, next uint64) ([]run, uint64) {
	var rs []run
	dense := func(p uint64, n uint64) {
		if k := len(rs); k > 0 && rs[k-1].entry != zeroRun && rs[k-1].first+rs[k-1].n == p {
			rs[k-1].n += n
		} else {
			rs = append(rs, run{first: p, n: n, entry: next})
		}
		next += n
	}
	var zeros, zstart uint64
	flush := func() {
		if zeros >= zeroRunMin {
			rs = append(rs, run{first: zstart, n: zeros, entry: zeroRun})
		} else if zeros > 0 {
			dense(zstart, zeros)
		}
		zeros = 0
	}
	for p := int64(0); p < pages; p++ {
		if w.res.Page(src, p).Kind == mem.KindZero {
			if zeros == 0 {
				zstart = uint64(p)
			}
			zeros++
			continue
		}
		flush()
		dense(uint64(p), 1)
	}
	flush()
	return rs, next
}

// entryOf returns the entry index of a page (which must not be in a zero
// run).
func (w *writer) entryOf(ref mem.PageRef) (uint32, error) {
	if ref.Source < 0 || ref.Source >= len(w.x.sources) {
		return 0, fmt.Errorf("reference to source %d: %w", ref.Source, ErrCorrupt)
	}
	e, ok := lookupRun(w.x.sources[ref.Source].runs, uint64(ref.Page))
	if !ok || e == zeroRun {
		return 0, fmt.Errorf("reference to page %d of source %d, which has no entry: %w", ref.Page, ref.Source, ErrCorrupt)
	}
	return uint32(e), nil
}

// lookupRun finds page p's entry index (zeroRun for a page of a zero run).
func lookupRun(rs []run, p uint64) (uint64, bool) {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].first+rs[i].n > p })
	if i == len(rs) || rs[i].first > p {
		return 0, false
	}
	if rs[i].entry == zeroRun {
		return zeroRun, true
	}
	return rs[i].entry + (p - rs[i].first), true
}

func (w *writer) writeSource(src int) (int64, error) {
	var payload int64
	var buf [entrySize]byte
	for ri, r := range w.x.sources[src].runs {
		if ri%64 == 0 && w.ctx.Err() != nil {
			return 0, w.ctx.Err()
		}
		if r.entry == zeroRun {
			continue
		}
		for p := r.first; p < r.first+r.n; p++ {
			enc, err := w.res.Encoding(src, int64(p))
			if err != nil {
				return 0, err
			}
			e := entry{kind: uint8(enc.Kind), ref: noRef}
			switch enc.Kind {
			case mem.KindZero:
			case mem.KindShared:
				if e.ref, err = w.entryOf(enc.Ref); err != nil {
					return 0, err
				}
			case mem.KindPatched, mem.KindCompressed, mem.KindRaw:
				if enc.Kind == mem.KindPatched {
					if e.ref, err = w.entryOf(enc.Ref); err != nil {
						return 0, err
					}
				}
				if enc.Kind == mem.KindCompressed {
					c, ok := w.codecs[enc.Codec]
					if !ok {
						c = uint8(len(w.x.codecs))
						w.codecs[enc.Codec] = c
						w.x.codecs = append(w.x.codecs, enc.Codec)
					}
					e.codec = c
				}
				if len(enc.Data) > PageSize || (len(enc.Data) == 0 && enc.Kind != mem.KindPatched) {
					return 0, fmt.Errorf("page %d of source %d: %s payload of %d bytes: %w", p, src, enc.Kind, len(enc.Data), ErrCorrupt)
				}
				e.n, e.sum = uint16(len(enc.Data)), sum32(enc.Data)
				if e.off, err = w.put(enc.Data); err != nil {
					return 0, err
				}
				payload += int64(len(enc.Data))
			default:
				return 0, fmt.Errorf("page %d of source %d: kind %v: %w", p, src, enc.Kind, ErrCorrupt)
			}
			e.put(buf[:])
			w.entries = append(w.entries, buf[:]...)
		}
	}
	return payload, nil
}
