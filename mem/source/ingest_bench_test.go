package source_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/source"
	"github.com/vmux/vmux/mem/store"
)

// discard is a Sink that only receives the pages (the read baseline).
type discard struct{}

func (discard) Region(source.Region) error { return nil }
func (discard) Pages([]byte) error         { return nil }
func (discard) Zeros(uint64) error         { return nil }

// BenchmarkIngestFile: scan a 256 MiB raw image (memory-like pages, 1/4 of
// them duplicates, 1/8 zero) into an engine, pages copied ("copied") or
// re-read later ("reread", what analyze and pack do for files), beside
// reading the file alone ("read-baseline"). cpu-GB/s is thread CPU time;
// the file is in the page cache.
func BenchmarkIngestFile(b *testing.B) {
	const pages = 65536
	r := rand.New(rand.NewPCG(12, 12))
	data := make([]byte, pages*source.PageSize)
	for p := 0; p < pages; p++ {
		page := data[p*source.PageSize : (p+1)*source.PageSize]
		switch {
		case p%8 == 0: // zero
		case p%4 == 1 && p > 8: // duplicate
			copy(page, data[(p-8)*source.PageSize:])
		default:
			for i := 0; i < len(page); i += 8 {
				if r.IntN(3) > 0 {
					v := 0x7f0000000000 + r.Uint64N(1<<30)*8
					for k := 0; k < 6; k++ {
						page[i+k] = byte(v >> (8 * k))
					}
				}
			}
		}
	}
	path := filepath.Join(b.TempDir(), "img")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	data = nil
	for _, mode := range []string{"read-baseline", "copied", "reread"} {
		b.Run(mode, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu time.Duration
			for b.Loop() {
				s, err := source.Open(path, source.Options{})
				if err != nil {
					b.Fatal(err)
				}
				c0, _ := linux.ThreadCPUTime()
				switch mode {
				case "read-baseline":
					err = s.Scan(discard{})
				default:
					e, _ := mem.NewEngine(mem.Config{})
					if r, ok := source.Rereader(s); ok && mode == "reread" {
						e.SetNextReader(r)
					}
					_, err = store.Ingest(context.Background(), e, s, nil)
				}
				c1, _ := linux.ThreadCPUTime()
				cpu += c1 - c0
				s.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N) * pages * source.PageSize
			b.SetBytes(pages * source.PageSize)
			b.ReportMetric(n/cpu.Seconds()/1e9, "cpu-GB/s")
		})
	}
}
