package cast

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// synthetic builds results of three modes: scaled draws from the
// baseline's distribution, naive from one 1.5x slower.
func synthetic(t testing.TB, reps int) *Report {
	t.Helper()
	info := ExperimentInfo{Name: "syn", Modes: []Mode{{Kind: Baseline, TDF: 1}, {Kind: Scaled, TDF: 4}, {Kind: Naive, TDF: 4}}, Tolerances: defaultTolerances(),
		Host: HostInfo{CPUs: 2, Kernel: "test"}}
	rng := rand.New(rand.NewPCG(7, 8))
	var results []*RunResult
	var samples [][]Record
	for _, m := range info.Modes {
		for rep := 1; rep <= reps; rep++ {
			scale := 1.0
			if m.Kind == Naive {
				scale = 1.5
			}
			var recs []Record
			for range 400 {
				recs = append(recs, Record{Metric: "job.latency", Value: scale * (10 + rng.NormFloat64()), Unit: "ms"})
			}
			recs = append(recs, Record{Metric: "job.completion", Value: scale * (10 + rng.Float64()*0.1), Unit: "s"})
			res := &RunResult{Mode: m, Rep: rep, Valid: true, RealSeconds: 10 * m.Factor(), VirtualSeconds: 10, Samples: len(recs),
				Timeline: []KeepupSample{{T: 1, HostIdle: 0.5, Wait: 0.01}, {T: 2, HostIdle: 0.4, Wait: 0.02, Throttled: 0.3}}}
			res.Keepup = summarize(res.Timeline)
			results = append(results, res)
			samples = append(samples, recs)
		}
	}
	return buildReport("/results", info, results, samples)
}

func TestReportFidelity(t *testing.T) {
	r := synthetic(t, 3)
	if len(r.Modes) != 3 || len(r.Fidelity) != 4 {
		t.Fatalf("%d modes, %d fidelity rows", len(r.Modes), len(r.Fidelity))
	}
	for _, f := range r.Fidelity {
		switch {
		case f.Mode == Scaled && f.Metric == "job.latency":
			if !f.Within || math.Abs(float64(f.RatioMean)-1) > 0.05 || f.N != 1200 || f.BaseN != 1200 {
				t.Errorf("scaled latency should be within: %+v", f)
			}
			if !(f.CIMean[0] <= f.RatioMean && f.RatioMean <= f.CIMean[1]) {
				t.Errorf("interval %v does not hold %v", f.CIMean, f.RatioMean)
			}
		case f.Mode == Naive:
			if f.Within || math.Abs(float64(f.RatioMean)-1.5) > 0.1 {
				t.Errorf("naive should be off by 1.5x: %+v", f)
			}
			if f.Metric == "job.latency" && float64(f.KS) < 0.2 {
				t.Errorf("naive latency KS %v, want a clear distance", f.KS)
			}
		}
	}
	// The JSON keys the issue fixes.
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Modes []struct {
			Mode    *string                               `json:"mode"`
			TDF     *float64                              `json:"tdf"`
			Valid   *bool                                 `json:"valid"`
			Keepup  *json.RawMessage                      `json:"keepup"`
			Metrics map[string]map[string]json.RawMessage `json:"metrics"`
		} `json:"modes"`
		Fidelity []map[string]json.RawMessage `json:"fidelity"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range doc.Modes {
		if m.Mode == nil || m.TDF == nil || m.Valid == nil || m.Keepup == nil || len(m.Metrics) != 2 {
			t.Fatalf("mode entry lacks keys: %+v", m)
		}
		for _, k := range []string{"n", "mean", "p50", "p99"} {
			if _, ok := m.Metrics["job.latency"][k]; !ok {
				t.Errorf("metrics entry lacks %q", k)
			}
		}
	}
	for _, f := range doc.Fidelity {
		for _, k := range []string{"metric", "mode", "tdf", "ratio_mean", "ratio_p50", "ratio_p99", "ks", "within"} {
			if _, ok := f[k]; !ok {
				t.Errorf("fidelity entry lacks %q: %v", k, f)
			}
		}
	}
}

func TestReportInvalidRuns(t *testing.T) {
	r := synthetic(t, 2)
	r.results[2].Keepup.MeanHostIdle = 0.001 // scaled run 1: the host was saturated
	rr := buildReport(r.Dir, r.Info, r.results, nil)
	m := rr.mode(Scaled, 4)
	if m.Valid || m.ValidRuns != 1 || m.Runs != 2 || len(m.Reasons) != 1 {
		t.Errorf("scaled mode: %+v", m)
	}
}

func TestNumJSON(t *testing.T) {
	b, _ := json.Marshal([]Num{1.5, Num(math.NaN()), Num(math.Inf(1))})
	if string(b) != "[1.5,null,null]" {
		t.Errorf("got %s", b)
	}
}

func TestStarvation(t *testing.T) {
	for _, c := range []struct {
		wait, used, share, dt float64
		periods, throttled    int64
		want                  float64
	}{
		{0, 0, 0.5, 1, 10, 0, 0},        // idle node
		{0.5, 0.5, 0.5, 1, 10, 10, 0},   // used its quota, throttled every period: not starved
		{0.4, 0.1, 0.5, 1, 10, 0, 0.8},  // wanted, got 0.1 of 0.5
		{0.05, 0.1, 0.5, 1, 10, 0, 0.1}, // waited only 0.05 s: that much was denied
		{2, 0.2, 0, 1, 0, 0, 0.8},       // unlimited: one core entitled
		{0, 0.25, 0.5, 1, 10, 5, 0},     // throttled half the periods, idle in the rest
		{0.4, 0.3, 0.5, 1, 10, 5, 0.4},  // throttled in 5, starved in the others: 0.2 of 0.5 denied
	} {
		if got := starvation(c.wait, c.used, c.share, c.dt, c.periods, c.throttled); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("starvation(%v) = %v, want %v", c, got, c.want)
		}
	}
}
