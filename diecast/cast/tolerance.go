package cast

import "math"

// Tolerance is how close a mode must come to the baseline: |ratio - 1| of
// the mean, median and 99th percentile, and the KS distance.
type Tolerance struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	KS   float64 `json:"ks"`
}

// Tolerances are the defaults of an experiment plus per-metric overrides.
type Tolerances struct {
	Tolerance
	Metrics map[string]Tolerance `json:"metrics,omitempty"`
}

func defaultTolerances() Tolerances {
	return Tolerances{Tolerance: Tolerance{Mean: 0.05, P50: 0.05, P99: 0.10, KS: 0.1}}
}

// For returns the tolerance of metric.
func (t Tolerances) For(metric string) Tolerance {
	if m, ok := t.Metrics[metric]; ok {
		return m
	}
	return t.Tolerance
}

// within reports whether a ratio r is within tol of 1.
func within(r, tol float64) bool { return !math.IsNaN(r) && math.Abs(r-1) <= tol+1e-12 }
