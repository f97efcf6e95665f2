package cast

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Summary describes one sample set.
type Summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Std  float64 `json:"std"`
}

// Summarize computes a Summary (zero for no samples).
func Summarize(x []float64) Summary {
	if len(x) == 0 {
		return Summary{}
	}
	s := sorted(x)
	m := mean(s)
	var ss float64
	for _, v := range s {
		ss += (v - m) * (v - m)
	}
	std := 0.0
	if len(s) > 1 {
		std = math.Sqrt(ss / float64(len(s)-1))
	}
	return Summary{N: len(s), Mean: m, P50: quantile(s, 0.5), P90: quantile(s, 0.9), P99: quantile(s, 0.99),
		Min: s[0], Max: s[len(s)-1], Std: std}
}

func sorted(x []float64) []float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s
}

func mean(x []float64) float64 {
	var t float64
	for _, v := range x {
		t += v
	}
	return t / float64(len(x))
}

// quantile of sorted s at p in [0, 1], interpolating linearly between
// order statistics (R's type 7, numpy's default).
func quantile(s []float64, p float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	h := p * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// KS is the two-sample Kolmogorov-Smirnov distance: the largest gap
// between the empirical CDFs of a and b (0 identical, 1 disjoint).
func KS(a, b []float64) float64 {
	if len(a) == 0 || len(b) == 0 {
		return math.NaN()
	}
	x, y := sorted(a), sorted(b)
	var i, j int
	var d float64
	for i < len(x) && j < len(y) {
		v := min(x[i], y[j])
		for i < len(x) && x[i] == v {
			i++
		}
		for j < len(y) && y[j] == v {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(x))-float64(j)/float64(len(y))))
	}
	return d
}

// KSCritical is the distance above which two samples of sizes n and m
// differ at significance alpha (the asymptotic Smirnov bound
// c(alpha) * sqrt((n+m)/(n*m))). A tolerance below it cannot be resolved
// with so few samples: identical distributions would exceed it often.
func KSCritical(n, m int, alpha float64) float64 {
	if n == 0 || m == 0 {
		return math.Inf(1)
	}
	c := math.Sqrt(-math.Log(alpha/2) / 2)
	return c * math.Sqrt(float64(n+m)/float64(n*m))
}

// Interval is a point estimate with a confidence interval.
type Interval struct {
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
}

// bootstrapSeed fixes the resampling: the same samples give the same
// report.
const bootstrapSeed = 0x766d7578

// bootstrapResamples is the number of bootstrap resamples for intervals.
const bootstrapResamples = 1000

// RatioCI estimates stat(mode)/stat(base) with a 95% percentile-bootstrap
// interval. Each argument holds one sample set per repetition: with at
// least two repetitions on both sides, repetitions are resampled (the run
// is the unit of independence); otherwise the samples themselves are.
func RatioCI(base, mode [][]float64, stat func([]float64) float64) Interval {
	return ratioCI(base, mode, stat, true)
}

func ratioCI(base, mode [][]float64, stat func([]float64) float64, ordered bool) Interval {
	pb, pm := pool(base), pool(mode)
	if len(pb) == 0 || len(pm) == 0 {
		return Interval{Value: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	point := stat(sorted(pm)) / stat(sorted(pb))
	rng := rand.New(rand.NewPCG(bootstrapSeed, uint64(len(pb))<<32|uint64(len(pm))))
	byRep := len(nonEmpty(base)) >= 2 && len(nonEmpty(mode)) >= 2
	rs := make([]float64, 0, bootstrapResamples)
	var bufB, bufM []float64
	for range bootstrapResamples {
		if byRep {
			bufB = resampleGroups(rng, nonEmpty(base), bufB[:0])
			bufM = resampleGroups(rng, nonEmpty(mode), bufM[:0])
		} else {
			bufB = resample(rng, pb, bufB[:0])
			bufM = resample(rng, pm, bufM[:0])
		}
		if ordered {
			slices.Sort(bufB)
			slices.Sort(bufM)
		}
		if d := stat(bufB); d != 0 {
			rs = append(rs, stat(bufM)/d)
		}
	}
	if len(rs) == 0 {
		return Interval{Value: point, Lo: math.NaN(), Hi: math.NaN()}
	}
	slices.Sort(rs)
	return Interval{Value: point, Lo: quantile(rs, 0.025), Hi: quantile(rs, 0.975)}
}

func pool(g [][]float64) []float64 {
	var out []float64
	for _, s := range g {
		out = append(out, s...)
	}
	return out
}

func nonEmpty(g [][]float64) [][]float64 {
	var out [][]float64
	for _, s := range g {
		if len(s) > 0 {
			out = append(out, s)
		}
	}
	return out
}

func resample(rng *rand.Rand, x, buf []float64) []float64 {
	for range x {
		buf = append(buf, x[rng.IntN(len(x))])
	}
	return buf
}

func resampleGroups(rng *rand.Rand, g [][]float64, buf []float64) []float64 {
	for range g {
		buf = append(buf, g[rng.IntN(len(g))]...)
	}
	return buf
}

// Statistics over sorted samples, as RatioCI takes them.
var (
	statMean = mean
	statP50  = func(s []float64) float64 { return quantile(s, 0.5) }
	statP99  = func(s []float64) float64 { return quantile(s, 0.99) }
)
