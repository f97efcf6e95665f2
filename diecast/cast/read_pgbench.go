package cast

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxLogBytes bounds what the pgbench reader takes from per-transaction
// logs (a long run writes one line per transaction).
const maxLogBytes = 64 << 20

// readPgbench reads pgbench's report: tps, latency_avg_ms, failed, one
// progress_tps and progress_latency_ms sample per -P line, and, when the
// job ran pgbench -l in its working directory, one latency_ms sample per
// transaction from the pgbench_log.* files (which it removes).
func readPgbench(o Output) ([]Sample, error) {
	var out []Sample
	var perr error
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, ","), 64)
		if err != nil && perr == nil {
			perr = fmt.Errorf("pgbench: %q is not a number", s)
		}
		return v
	}
	scan := func(b []byte) {
		lines(b, func(l string) {
			f := strings.Fields(l)
			switch {
			case strings.HasPrefix(l, "progress:") && len(f) >= 7 && f[4] == "tps," && f[5] == "lat":
				out = append(out, Sample{Metric: "progress_tps", Value: num(f[3]), Unit: "1/s"},
					Sample{Metric: "progress_latency_ms", Value: num(f[6]), Unit: "ms"})
			case strings.HasPrefix(l, "tps = ") && len(f) >= 3:
				out = append(out, Sample{Metric: "tps", Value: num(f[2]), Unit: "1/s"})
			case strings.HasPrefix(l, "latency average = ") && len(f) >= 4:
				out = append(out, Sample{Metric: "latency_avg_ms", Value: num(f[3]), Unit: "ms"})
			case strings.HasPrefix(l, "number of failed transactions:") && len(f) >= 5:
				out = append(out, Sample{Metric: "failed", Value: num(f[4]), Unit: "count"})
			}
		})
	}
	scan(o.Stdout)
	scan(o.Stderr) // -P progress goes to stderr
	if perr != nil {
		return nil, perr
	}
	if o.WorkDir != "" {
		logs, _ := filepath.Glob(filepath.Join(o.WorkDir, "pgbench_log.*"))
		total := 0
		for _, p := range logs {
			b, err := readBounded(p, maxLogBytes-total)
			total += len(b)
			if err != nil {
				return nil, fmt.Errorf("pgbench log: %w", err)
			}
			// client_id transaction_no time_us script_no epoch epoch_us
			lines(b, func(l string) {
				f := strings.Fields(l)
				if len(f) >= 3 {
					if us, err := strconv.ParseFloat(f[2], 64); err == nil {
						out = append(out, Sample{Metric: "latency_ms", Value: us / 1e3, Unit: "ms"})
					}
				}
			})
			os.Remove(p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pgbench output without results: %w", ErrNoMetrics)
	}
	return out, nil
}
