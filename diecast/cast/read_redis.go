package cast

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
)

// redisColumns names redis-benchmark --csv columns (Redis 7) as metrics.
var redisColumns = map[string]struct{ name, unit string }{
	"rps":            {"rps", "1/s"},
	"avg_latency_ms": {"avg_ms", "ms"},
	"min_latency_ms": {"min_ms", "ms"},
	"p50_latency_ms": {"p50_ms", "ms"},
	"p95_latency_ms": {"p95_ms", "ms"},
	"p99_latency_ms": {"p99_ms", "ms"},
	"max_latency_ms": {"max_ms", "ms"},
}

// readRedisBenchmark reads redis-benchmark --csv: per test (SET, GET...)
// TEST.rps and TEST.{avg,min,p50,p95,p99,max}_ms; the two-column format of
// older versions gives TEST.rps only.
func readRedisBenchmark(o Output) ([]Sample, error) {
	r := csv.NewReader(strings.NewReader(string(o.Stdout)))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("decode redis-benchmark --csv: %w", err)
	}
	var header []string
	var out []Sample
	for _, rec := range recs {
		if len(rec) < 2 {
			continue
		}
		if rec[0] == "test" {
			header = rec
			continue
		}
		test := strings.ReplaceAll(strings.Fields(rec[0] + " x")[0], ".", "_")
		for i := 1; i < len(rec); i++ {
			col := "rps"
			if header != nil && i < len(header) {
				col = header[i]
			} else if i > 1 {
				break
			}
			m, ok := redisColumns[col]
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil {
				return nil, fmt.Errorf("redis-benchmark %s %s: %q is not a number", test, col, rec[i])
			}
			out = append(out, Sample{Metric: test + "." + m.name, Value: v, Unit: m.unit})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("redis-benchmark output without --csv results: %w", ErrNoMetrics)
	}
	return out, nil
}
