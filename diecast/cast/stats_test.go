package cast

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{5, 1, 4, 2, 3})
	if s.N != 5 || s.Mean != 3 || s.P50 != 3 || s.Min != 1 || s.Max != 5 || math.Abs(s.P90-4.6) > 1e-9 || math.Abs(s.Std-math.Sqrt(2.5)) > 1e-9 {
		t.Errorf("summary %+v", s)
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("empty summary not zero")
	}
}

func TestKS(t *testing.T) {
	a := []float64{1, 2, 3, 4}
	if d := KS(a, a); d != 0 {
		t.Errorf("KS(a,a) = %v", d)
	}
	if d := KS(a, []float64{10, 11}); d != 1 {
		t.Errorf("disjoint KS = %v", d)
	}
	// Half of b lies below all of a: the CDFs differ by 0.5 there.
	if d := KS(a, []float64{0, 0, 2.5, 3.5}); d != 0.5 {
		t.Errorf("KS = %v, want 0.5", d)
	}
	// Ties across samples are one step of both CDFs.
	if d := KS([]float64{1, 1, 2}, []float64{1, 2, 2}); math.Abs(d-1.0/3) > 1e-12 {
		t.Errorf("KS with ties = %v, want 1/3", d)
	}
	// Two large samples of one distribution are close; shifted by one
	// standard deviation they are ~0.38 apart.
	r := rand.New(rand.NewPCG(1, 2))
	x, y, z := make([]float64, 4000), make([]float64, 4000), make([]float64, 4000)
	for i := range x {
		x[i], y[i], z[i] = r.NormFloat64(), r.NormFloat64(), r.NormFloat64()+1
	}
	if d := KS(x, y); d > KSCritical(4000, 4000, 0.05) {
		t.Errorf("same distribution: KS %v above the 5%% critical value", d)
	}
	if d := KS(x, z); math.Abs(d-0.383) > 0.03 {
		t.Errorf("shift by 1 sd: KS %v, want ~0.383", d)
	}
}

func TestRatioCI(t *testing.T) {
	base := [][]float64{{10, 10.2, 9.8}, {10.1, 9.9, 10}, {10, 10, 10.1}}
	mode := [][]float64{{12, 12.3, 11.9}, {12.1, 11.8, 12}, {12.2, 12, 12}}
	iv := RatioCI(base, mode, statMean)
	if math.Abs(iv.Value-1.2) > 0.01 || !(iv.Lo <= iv.Value && iv.Value <= iv.Hi) || iv.Lo < 1.15 || iv.Hi > 1.25 {
		t.Errorf("ratio %+v, want ~1.2 with a tight interval", iv)
	}
	if again := RatioCI(base, mode, statMean); again != iv {
		t.Errorf("not deterministic: %+v then %+v", iv, again)
	}
	// One repetition each: samples are resampled; the interval still
	// covers the true ratio 2 of these exponential-ish sets.
	r := rand.New(rand.NewPCG(3, 4))
	b, m := make([]float64, 500), make([]float64, 500)
	for i := range b {
		b[i], m[i] = r.ExpFloat64(), 2*r.ExpFloat64()
	}
	iv = RatioCI([][]float64{b}, [][]float64{m}, statP50)
	if !(iv.Lo < 2 && 2 < iv.Hi) || iv.Hi-iv.Lo > 1 {
		t.Errorf("p50 ratio %+v does not cover 2 tightly", iv)
	}
	if iv := RatioCI(nil, mode, statMean); !math.IsNaN(iv.Value) {
		t.Errorf("no baseline: %+v", iv)
	}
}
