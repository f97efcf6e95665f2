package cast

import (
	"fmt"
	"strconv"
	"strings"
)

// wrkDuration parses wrk's latency notation (45.00us, 1.23ms, 2.01s, 1.00m)
// into milliseconds.
func wrkDuration(s string) (float64, error) {
	for _, u := range []struct {
		suf string
		ms  float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}} {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk latency %q: %w", s, err)
			}
			return f * u.ms, nil
		}
	}
	return 0, fmt.Errorf("wrk latency %q: no unit", s)
}

// readWrk reads wrk --latency text output: requests_per_s, latency_mean_ms,
// latency_pNN_ms from the latency distribution, and errors (socket errors
// plus non-2xx/3xx responses). Per-request latencies need a script: print
// generic JSON lines from wrk's done() and use the json reader too.
func readWrk(o Output) ([]Sample, error) {
	var out []Sample
	var perr error
	inDist := false
	errs := 0.0
	sawErrs := false
	lines(o.Stdout, func(l string) {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case f[0] == "Latency" && len(f) >= 2 && f[1] == "Distribution":
			inDist = true
			return
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			p := strings.TrimSuffix(f[0], "%")
			v, err := wrkDuration(f[1])
			if err != nil {
				perr = err
				return
			}
			out = append(out, Sample{Metric: "latency_p" + strings.ReplaceAll(strings.TrimSuffix(p, ".000"), ".", "_") + "_ms", Value: v, Unit: "ms"})
			return
		case f[0] == "Latency" && len(f) >= 2:
			if v, err := wrkDuration(f[1]); err == nil {
				out = append(out, Sample{Metric: "latency_mean_ms", Value: v, Unit: "ms"})
			}
		case f[0] == "Requests/sec:" && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				perr = fmt.Errorf("wrk requests/sec %q: %w", f[1], err)
				return
			}
			out = append(out, Sample{Metric: "requests_per_s", Value: v, Unit: "1/s"})
		case f[0] == "Socket" && len(f) > 2 && f[1] == "errors:":
			sawErrs = true
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.ParseFloat(strings.TrimSuffix(f[i+1], ","), 64)
				errs += n
			}
		case strings.HasPrefix(l, "Non-2xx or 3xx responses:") && len(f) == 5:
			sawErrs = true
			n, _ := strconv.ParseFloat(f[4], 64)
			errs += n
		}
		inDist = false
	})
	if perr != nil {
		return nil, perr
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("wrk output without results: %w", ErrNoMetrics)
	}
	if sawErrs || len(out) > 0 {
		out = append(out, Sample{Metric: "errors", Value: errs, Unit: "count"})
	}
	return out, nil
}
