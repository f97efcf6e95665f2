//go:build linux

package mem

import (
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// Benchmarks run on the memory of real processes started once per run:
// several python3, perl and redis-server instances.
var (
	benchOnce sync.Once
	benchMem  *captured
)

func benchCapture(b *testing.B) *captured {
	b.Helper()
	benchOnce.Do(func() {
		var procs []*proc
		for i := 1; i <= 3; i++ {
			procs = append(procs,
				startProc(b, "python3", i, 20000*i),
				startProc(b, "redis", i, 30000*i),
				startProc(b, "perl", i, 20000*i))
		}
		benchMem = captureProcs(b, procs)
	})
	if benchMem == nil {
		b.Fatal("no captured memory")
	}
	return benchMem
}

// nonZero returns the non-zero pages of c, in source order.
func (c *captured) nonZero() [][]byte {
	var out [][]byte
	for _, ps := range c.pages {
		for _, p := range ps {
			if !isZeroForTest(p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func isZeroForTest(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

func percentile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[int(q*float64(len(d)-1))].Nanoseconds())
}

// BenchmarkScan: hash + zero check + identical-page index over real memory
// (every page, zero pages included), each iteration side by side with a
// baseline pass that copies the same pages into one warm buffer; x-memcpy is
// the engine's time over the baseline's. "recycled" reuses the arena memory
// of the previous iteration (the Go heap keeps it), "fresh" forces new
// memory (every first write to a page is a kernel page fault).
func BenchmarkScan(b *testing.B) {
	c := benchCapture(b)
	var all [][]byte
	for _, ps := range c.pages {
		all = append(all, ps...)
	}
	dst := make([]byte, PageSize)
	runtime.LockOSThread() // thread CPU time below must be this goroutine's
	defer runtime.UnlockOSThread()
	for _, mode := range []string{"recycled", "fresh"} {
		b.Run(mode, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var te, tb, ce, cb time.Duration
			for b.Loop() {
				if mode == "fresh" {
					b.StopTimer()
					runtime.GC()
					debug.FreeOSMemory()
					b.StartTimer()
				}
				c0 := threadCPU(b)
				t0 := time.Now()
				for _, p := range all {
					copy(dst, p)
				}
				t1 := time.Now()
				c1 := threadCPU(b)
				e, _ := NewEngine(Config{})
				s := e.AddSource("all", "")
				for _, p := range all {
					if err := e.AddPage(s, p); err != nil {
						b.Fatal(err)
					}
				}
				tb += t1.Sub(t0)
				te += time.Since(t1)
				c2 := threadCPU(b)
				cb += c1 - c0
				ce += c2 - c1
			}
			n := float64(b.N) * float64(len(all)) * PageSize
			b.ReportMetric(n/te.Seconds()/1e9, "engine-GB/s-wall")
			b.ReportMetric(n/ce.Seconds()/1e9, "engine-GB/s-cpu")
			b.ReportMetric(n/cb.Seconds()/1e9, "memcpy-GB/s-cpu")
			b.ReportMetric(ce.Seconds()/cb.Seconds(), "x-memcpy-cpu")
		})
	}
}

func threadCPU(b *testing.B) time.Duration {
	d, err := linux.ThreadCPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// sliceReader re-reads pages kept by the benchmark.
type sliceReader [][]byte

func (r sliceReader) ReadPage(n int64, dst []byte) error {
	copy(dst, r[n])
	return nil
}

// BenchmarkScanHeld: memory the engine holds after scanning the real memory
// (before Finish), sources copied (AddSource) or re-readable
// (AddSourceReader), and the scan rate of each.
func BenchmarkScanHeld(b *testing.B) {
	c := benchCapture(b)
	var all [][]byte
	for _, ps := range c.pages {
		all = append(all, ps...)
	}
	for _, mode := range []string{"copied", "reader"} {
		b.Run(mode, func(b *testing.B) {
			var held int64
			for b.Loop() {
				e, _ := NewEngine(Config{})
				var s int
				if mode == "reader" {
					s = e.AddSourceReader("all", "", sliceReader(all))
				} else {
					s = e.AddSource("all", "")
				}
				for _, p := range all {
					if err := e.AddPage(s, p); err != nil {
						b.Fatal(err)
					}
				}
				held = e.idx.MemoryBytes()
			}
			b.SetBytes(int64(len(all)) * PageSize)
			b.ReportMetric(float64(held)/(1<<20), "index-MiB")
			b.ReportMetric(float64(len(all))*PageSize/(1<<20), "scanned-MiB")
		})
	}
}

// BenchmarkRebuild: rebuild one page by kind, p50/p99 per page (wall time,
// including a ~40 ns clock read), each beside a baseline that copies the
// original bytes of the same pages in the same order.
func BenchmarkRebuild(b *testing.B) {
	c := benchCapture(b)
	one := c.corpus(func(int) Domain { return "" })
	res := one.run(b, Config{})
	byKind := map[Kind][]PageRef{}
	for s, ps := range one.pages {
		for p := range ps {
			k := res.Page(s, int64(p)).Kind
			byKind[k] = append(byKind[k], PageRef{s, int64(p)})
		}
	}
	dst := make([]byte, PageSize)
	for _, k := range []Kind{KindRaw, KindShared, KindPatched, KindCompressed} {
		refs := byKind[k]
		if len(refs) == 0 {
			b.Fatalf("no %s pages in the real memory", k)
		}
		b.Run(k.String(), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			lat := make([]time.Duration, 0, b.N)
			i := 0
			c0 := threadCPU(b)
			for b.Loop() {
				r := refs[i%len(refs)]
				i++
				t0 := time.Now()
				if err := res.Decode(r.Source, r.Page, dst); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			cpu := threadCPU(b) - c0
			b.SetBytes(PageSize)
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(len(lat)), "cpu-ns/op")
			b.ReportMetric(percentile(lat, 0.5), "p50-ns")
			b.ReportMetric(percentile(lat, 0.99), "p99-ns")
		})
		// baseline: copy the original bytes of the same pages, same order
		b.Run(k.String()+"-memcpy-baseline", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				r := refs[i%len(refs)]
				i++
				t0 := time.Now()
				copy(dst, one.pages[r.Source][r.Page])
				lat = append(lat, time.Since(t0))
			}
			b.SetBytes(PageSize)
			b.ReportMetric(percentile(lat, 0.5), "p50-ns")
			b.ReportMetric(percentile(lat, 0.99), "p99-ns")
		})
	}
}

// BenchmarkPatchCreate: thread CPU time to find a reference and encode the
// patch, per page patched (p50, p99), and per page offered (including the
// pages for which no patch was found), for each detector, on the real
// memory. Each figure includes one clock read (~1 µs).
func BenchmarkPatchCreate(b *testing.B) {
	c := benchCapture(b)
	pages := c.nonZero()
	for _, det := range []string{"hsd21", "sketch"} {
		b.Run(det, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var hit, all []time.Duration
			var patched int64
			for b.Loop() {
				e, _ := NewEngine(Config{Detector: det})
				s := e.AddSource("all", "")
				for _, p := range pages {
					_ = e.AddPage(s, p)
				}
				if err := e.compressAll(); err != nil {
					b.Fatal(err)
				}
				us, _ := e.unitSets()
				e.patchClock = func() time.Duration { return threadCPU(b) }
				e.patchLatency = func(d time.Duration, ok bool) {
					all = append(all, d)
					if ok {
						hit = append(hit, d)
					}
				}
				p, err := e.makePlan(us, true)
				if err != nil {
					b.Fatal(err)
				}
				patched = p.det.PatchesKept
			}
			b.ReportMetric(percentile(hit, 0.5), "p50-cpu-ns/patch")
			b.ReportMetric(percentile(hit, 0.99), "p99-cpu-ns/patch")
			b.ReportMetric(percentile(all, 0.5), "p50-cpu-ns/page")
			var sum time.Duration
			for _, d := range all {
				sum += d
			}
			b.ReportMetric(float64(sum.Nanoseconds())/float64(max(len(all), 1)), "mean-cpu-ns/page")
			b.ReportMetric(float64(patched), "patched")
		})
	}
}

// BenchmarkDetectors: the whole engine with each detector on the same real
// memory: pages patched, bytes saved, time.
func BenchmarkDetectors(b *testing.B) {
	c := benchCapture(b)
	one := c.corpus(func(int) Domain { return "" })
	saved := map[string]float64{}
	for _, det := range []string{"hsd21", "sketch"} {
		b.Run(det, func(b *testing.B) {
			var st Stats
			for b.Loop() {
				st = one.run(b, Config{Detector: det}).Stats
			}
			b.SetBytes(st.Total.TotalBytes)
			b.ReportMetric(float64(st.Total.Pages.Patched), "patched")
			b.ReportMetric(float64(st.Total.SavedBytes)/(1<<20), "saved-MiB")
			b.ReportMetric(float64(st.Total.StoredBytes)/(1<<20), "stored-MiB")
			b.ReportMetric(float64(st.KSM.StoredBytes)/(1<<20), "ksm-stored-MiB")
			b.ReportMetric(st.SavingsRatio, "x-ksm-savings")
			b.ReportMetric(float64(st.Total.MetadataBytes)/float64(st.Total.TotalBytes)*100, "metadata-%")
			saved[det] = float64(st.Total.SavedBytes)
		})
	}
	if saved["hsd21"] > 0 {
		b.Logf("sketch saves %.3fx the bytes hsd21 saves", saved["sketch"]/saved["hsd21"])
	}
}
