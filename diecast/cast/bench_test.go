package cast

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

// BenchmarkExamples runs each example spec three ways (baseline, scaled
// and naive at k = 4 and 10, the spec's repetitions) and reports, for the
// example's headline metric, each mode's ratio of the mean to the
// baseline and its KS distance. These are the fidelity tables of
// docs/benchmarks.md; run one at a time under the test lock:
//
//	VMUX_CAST_BENCH=1 flock /work/test.lock go test -run '^$' -bench 'Examples/redis' -benchtime 1x ./diecast/cast
//
// Each takes 5-20 minutes, so make bench skips them unless VMUX_CAST_BENCH
// is set.
func BenchmarkExamples(b *testing.B) {
	if os.Getenv("VMUX_CAST_BENCH") == "" {
		b.Skip("the three-way example runs take 5-20 min each: set VMUX_CAST_BENCH=1")
	}
	testutil.MustRoot(b)
	for _, ex := range []struct{ name, metric string }{
		{"redis", "bench.SET.rps"},
		{"nginx", "wrk.latency"},
		{"etcd", "election.election_ms"},
		{"bittorrent", "peers.completion"},
		{"tcp", "short.fct"},
	} {
		b.Run(ex.name, func(b *testing.B) {
			e, err := Load(filepath.Join("..", "..", "examples", ex.name+".yaml"))
			if err != nil {
				b.Fatal(err)
			}
			modes, _ := Plan(nil, []float64{4, 10})
			for range b.N {
				dir := filepath.Join(b.TempDir(), "results")
				if _, err := Run(context.Background(), e, Options{Modes: modes, Dir: dir, Exe: vmuxBinary(b)}); err != nil {
					b.Fatal(err)
				}
				rep, err := LoadReport(dir)
				if err != nil {
					b.Fatal(err)
				}
				if os.Getenv("VMUX_BENCH_TABLE") != "" {
					var sb strings.Builder
					rep.WriteTable(&sb)
					b.Log("\n" + sb.String())
				}
				for _, f := range rep.Fidelity {
					if f.Metric == ex.metric {
						id := f.Mode + "-k" + strconv.FormatFloat(f.TDF, 'g', -1, 64)
						b.ReportMetric(float64(f.RatioMean), id+"-ratio")
						b.ReportMetric(float64(f.KS), id+"-ks")
					}
				}
			}
		})
	}
}
