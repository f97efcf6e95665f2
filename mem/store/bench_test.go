package store

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/vmux/vmux/mem"
)

// BenchmarkReadPage reads random single pages of one kind from a store and,
// in the same loop, the same pages with a plain pread from the original
// image (the baseline); it reports both per-page times and their ratio.
func BenchmarkReadPage(b *testing.B) {
	dir := b.TempDir()
	img := image(b, dir, 7, 8192)
	path, _ := pack(b, dir, mem.Config{}, img)
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	f, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	byKind := map[uint8][]uint64{}
	src := s.Sources()[0]
	for p := range src.Pages - 1 { // the last page is partial in the file
		ei, _ := lookupRun(src.runs, p)
		if ei == zeroRun {
			continue
		}
		e, err := s.entry(ei)
		if err != nil {
			b.Fatal(err)
		}
		byKind[e.kind] = append(byKind[e.kind], p)
	}
	fileOff := func(p uint64) int64 { return int64(p * PageSize) }
	for _, k := range []struct {
		name string
		kind uint8
	}{{"shared", kShared}, {"patched", kPatched}, {"lz4", kCompressed}, {"raw", kRaw}} {
		pages := byKind[k.kind]
		if len(pages) == 0 {
			b.Logf("no %s pages in the store", k.name)
			continue
		}
		b.Run(k.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			dst := make([]byte, PageSize)
			// Steady state: every page of the mapping and of the image's
			// page cache touched once (a first touch of a mapped page is
			// a page fault, ~16 us on this machine).
			for _, p := range pages {
				s.ReadPage(0, p, dst)
				f.ReadAt(dst, fileOff(p))
			}
			var tStore, tPread time.Duration
			b.SetBytes(PageSize)
			for b.Loop() {
				p := pages[r.IntN(len(pages))]
				t0 := time.Now()
				if err := s.ReadPage(0, p, dst); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := f.ReadAt(dst, fileOff(p)); err != nil {
					b.Fatal(err)
				}
				tStore += t1.Sub(t0)
				tPread += time.Since(t1)
			}
			b.ReportMetric(float64(tStore.Nanoseconds())/float64(b.N), "store-ns/page")
			b.ReportMetric(float64(tPread.Nanoseconds())/float64(b.N), "pread-ns/page")
			b.ReportMetric(float64(tStore)/float64(tPread), "x-pread")
		})
	}
}
