package cast

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

// BenchmarkKeepup is the keep-up threshold study: examples/redis.yaml's
// baseline on an unloaded host, then its scale model at k (VMUX_KEEPUP_K,
// default 4) with L busy loops beside it for each L of VMUX_KEEPUP_LOADS
// (default 0,4,8,16,32), 2 runs each. For each load it logs the monitor's
// readings (host idle, the worst node's denied share, late packets) next
// to the fidelity of redis-benchmark's figures (each the ratio of its mean
// over the runs to the baseline's), so the thresholds can sit where
// fidelity breaks:
//
//	VMUX_CAST_BENCH=1 flock /work/test.lock go test -run '^$' -bench Keepup -benchtime 1x -timeout 60m -v ./diecast/cast
func BenchmarkKeepup(b *testing.B) {
	if os.Getenv("VMUX_CAST_BENCH") == "" {
		b.Skip("the keep-up study takes ~5 min: set VMUX_CAST_BENCH=1")
	}
	testutil.MustRoot(b)
	k := 4.0
	if v, err := strconv.ParseFloat(os.Getenv("VMUX_KEEPUP_K"), 64); err == nil {
		k = v
	}
	loads := []int{0, 4, 8, 16, 32}
	if v := os.Getenv("VMUX_KEEPUP_LOADS"); v != "" {
		loads = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatal(err)
			}
			loads = append(loads, n)
		}
	}
	e, err := Load(filepath.Join("..", "..", "examples", "redis.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	run := func(kind string, tdf float64, busy int) ModeReport {
		b.Helper()
		var loops []*exec.Cmd
		for range busy {
			c := exec.Command("python3", "-c", "while True: pass")
			if err := c.Start(); err != nil {
				b.Fatal(err)
			}
			loops = append(loops, c)
		}
		defer func() {
			for _, c := range loops {
				c.Process.Kill()
				c.Wait()
			}
		}()
		modes, err := Plan([]string{kind}, []float64{tdf})
		if err != nil {
			b.Fatal(err)
		}
		dir := filepath.Join(b.TempDir(), "results")
		if _, err := Run(context.Background(), e, Options{Modes: modes, Repeat: 2, Dir: dir, Exe: vmuxBinary(b)}); err != nil {
			b.Fatal(err)
		}
		rep, err := LoadReport(dir)
		if err != nil || len(rep.Modes) != 1 {
			b.Fatalf("report: %v %+v", err, rep)
		}
		return rep.Modes[0]
	}
	// redis-benchmark's per-run figures: each compared by its mean
	metrics := []string{"bench.SET.rps", "bench.GET.rps", "bench.SET.p50_ms", "bench.SET.p99_ms", "bench.completion"}
	for range b.N {
		base := run(Baseline, 1, 0)
		var sb strings.Builder
		fmt.Fprintf(&sb, "| load | valid | host idle | denied (worst node) | late | %s |\n", strings.Join(metrics, " | "))
		row := func(label string, m ModeReport) {
			fmt.Fprintf(&sb, "| %s | %d/%d | %.0f%% | %.0f%% | %.1f%% |", label, m.ValidRuns, m.Runs,
				100*m.Keepup.MeanHostIdle, 100*m.Keepup.MeanWait, 100*m.Keepup.LateFraction)
			for _, name := range metrics {
				x, y := m.Metrics[name], base.Metrics[name]
				if x.N == 0 || y.N == 0 {
					sb.WriteString(" - |")
					continue
				}
				fmt.Fprintf(&sb, " %.3f |", x.Mean/y.Mean)
			}
			sb.WriteString("\n")
		}
		row("baseline", base)
		for _, l := range loads {
			m := run(Scaled, k, l)
			row(fmt.Sprintf("k=%g, %d busy loops", k, l), m)
			id := fmt.Sprintf("L%d", l)
			b.ReportMetric(m.Keepup.MeanWait, id+"-denied")
			b.ReportMetric(m.Keepup.MeanHostIdle, id+"-idle")
			if x, y := m.Metrics[metrics[0]], base.Metrics[metrics[0]]; x.N > 0 && y.N > 0 {
				b.ReportMetric(x.Mean/y.Mean, id+"-set-rps-ratio")
			}
		}
		b.Log("\n" + sb.String())
	}
}
