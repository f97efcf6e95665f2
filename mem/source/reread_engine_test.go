package source_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/source"
	"github.com/vmux/vmux/mem/store"
)

// image writes a raw image with zero, duplicate, similar, compressible and
// random pages and an unaligned tail.
func image(t *testing.T) (string, []byte) {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 11))
	base := make([]byte, source.PageSize)
	for i := 0; i < len(base); i += 8 {
		base[i] = byte(r.UintN(256))
		base[i+5] = 0x7f
	}
	var b []byte
	for p := range 96 {
		page := bytes.Clone(base)
		switch p % 6 {
		case 0: // zero
			clear(page)
		case 1: // duplicate of base
		case 2, 3: // similar to base
			for range 8 {
				page[r.IntN(len(page))] ^= 0x5a
			}
		case 4: // random
			for i := range page {
				page[i] = byte(r.UintN(256))
			}
		case 5: // compressible
			copy(page, bytes.Repeat([]byte{byte(p)}, 3000))
		}
		b = append(b, page...)
	}
	b = append(b, "an unaligned tail"...)
	path := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b
}

type counting struct {
	source.Rereadable
	n atomic.Int64
}

func (c *counting) ReadPage(n int64, dst []byte) error {
	c.n.Add(1)
	return c.Rereadable.ReadPage(n, dst)
}

// ingest scans path into a fresh engine, re-read through the source, and
// calls between (if not nil) before Finish.
func ingest(t *testing.T, path string, between func()) (*mem.Result, *counting, error) {
	t.Helper()
	s, err := source.Open(path, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := mem.NewEngine(mem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := source.Rereader(s)
	if !ok {
		t.Fatal("a raw image is not rereadable")
	}
	c := &counting{Rereadable: r}
	e.SetNextReader(c)
	if _, err := store.Ingest(context.Background(), e, s, nil); err != nil {
		t.Fatal(err)
	}
	if between != nil {
		between()
	}
	res, err := e.Finish()
	return res, c, err
}

// A file source scanned without copies: the engine re-reads its pages, and
// every page decodes to the file's bytes.
func TestRereadRoundTrip(t *testing.T) {
	path, want := image(t)
	res, c, err := ingest(t, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.n.Load() == 0 {
		t.Fatal("the engine never re-read the file")
	}
	tot := res.Stats.Total.Pages
	if tot.Patched == 0 || tot.Shared == 0 || tot.Zero == 0 || tot.Compressed == 0 {
		t.Fatalf("want every kind of page, got %+v", tot)
	}
	dst := make([]byte, source.PageSize)
	for p := int64(0); p*source.PageSize < int64(len(want)); p++ {
		if err := res.Decode(0, p, dst); err != nil {
			t.Fatal(err)
		}
		page := make([]byte, source.PageSize)
		copy(page, want[p*source.PageSize:])
		if !bytes.Equal(dst, page) {
			t.Fatalf("page %d differs", p)
		}
	}
}

// A file changed between the scan and the re-read fails the analysis.
func TestRereadChangedFile(t *testing.T) {
	path, data := image(t)
	_, _, err := ingest(t, path, func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte{^data[source.PageSize]}, source.PageSize); err != nil {
			t.Fatal(err)
		}
	})
	if !errors.Is(err, mem.ErrSourceChanged) {
		t.Fatalf("file changed in place: %v, want ErrSourceChanged", err)
	}
	t.Logf("changed in place: %v", err)

	path, _ = image(t)
	_, _, err = ingest(t, path, func() {
		if err := os.Truncate(path, source.PageSize); err != nil {
			t.Fatal(err)
		}
	})
	if !errors.Is(err, source.ErrChanged) {
		t.Fatalf("file truncated: %v, want ErrChanged", err)
	}
	t.Logf("truncated: %v", err)
}

// Two identical files analyzed together: every page of the second is
// shared with the first, and the first's similar pages are still patched
// (a shared page then decodes in two steps: its canonical page's patch
// over a raw reference). The store decodes every page of both exactly.
func TestIdenticalFilesPatchedAndStored(t *testing.T) {
	path, want := image(t)
	dup := filepath.Join(t.TempDir(), "img2")
	if err := os.WriteFile(dup, want, 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := mem.NewEngine(mem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var metas []store.Meta
	for _, p := range []string{path, dup} {
		s, err := source.Open(p, source.Options{Domain: "one"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		r, _ := source.Rereader(s)
		e.SetNextReader(r)
		m, err := store.Ingest(context.Background(), e, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		metas = append(metas, m)
	}
	res, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	per := res.Stats.Sources
	if per[0].Totals.Pages.Patched == 0 || per[1].Totals.Pages.Shared == 0 ||
		per[1].Totals.Pages.Patched+per[1].Totals.Pages.Raw+per[1].Totals.Pages.Compressed != 0 {
		t.Fatalf("first copy %+v, second copy %+v: want patches in the first, only shared and zero pages in the second",
			per[0].Totals.Pages, per[1].Totals.Pages)
	}
	st := filepath.Join(t.TempDir(), "s.vmx")
	if _, err := store.Write(context.Background(), st, res, metas); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(st)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Verify(nil); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, source.PageSize)
	twoStep := 0
	for src := range 2 {
		for p := int64(0); p*source.PageSize < int64(len(want)); p++ {
			if err := s.ReadPage(src, uint64(p), dst); err != nil {
				t.Fatal(err)
			}
			page := make([]byte, source.PageSize)
			copy(page, want[p*source.PageSize:])
			if !bytes.Equal(dst, page) {
				t.Fatalf("source %d page %d differs", src, p)
			}
			if enc := res.Page(src, p); enc.Kind == mem.KindShared && res.Page(enc.Ref.Source, enc.Ref.Page).Kind == mem.KindPatched {
				twoStep++
			}
		}
	}
	if twoStep == 0 {
		t.Fatal("no shared page refers to a patched page")
	}
}
