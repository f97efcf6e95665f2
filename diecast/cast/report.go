package cast

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Report is the fidelity report of a results directory.
type Report struct {
	Name       string         `json:"name"`
	Dir        string         `json:"dir"`
	Info       ExperimentInfo `json:"experiment"`
	Modes      []ModeReport   `json:"modes"`
	Fidelity   []Fidelity     `json:"fidelity"`
	Runs       []RunSummary   `json:"runs"`
	Tolerances Tolerances     `json:"tolerances"`
	// Metrics lists every metric name, sorted.
	Metrics []string `json:"metric_names"`

	// samples by mode index, metric, run: for plots.
	samples []map[string][][]float64
	results []*RunResult
}

// ModeReport is one mode over its runs.
type ModeReport struct {
	Mode string  `json:"mode"`
	TDF  float64 `json:"tdf"`
	// Auto: k was adjusted while the runs went (TDF is where it started;
	// FinalTDF the mean of where it ended).
	Auto     bool    `json:"auto,omitempty"`
	FinalTDF float64 `json:"final_tdf,omitempty"`
	// Valid: at least one run, and every run valid. Statistics come from
	// the valid runs (from all runs when none is valid).
	Valid     bool                     `json:"valid"`
	Runs      int                      `json:"runs"`
	ValidRuns int                      `json:"valid_runs"`
	Reasons   []string                 `json:"reasons,omitempty"`
	Keepup    Keepup                   `json:"keepup"`
	Metrics   map[string]MetricSummary `json:"metrics"`
	// Mean real and virtual seconds of a run's workload.
	RealSeconds    float64 `json:"real_seconds"`
	VirtualSeconds float64 `json:"virtual_seconds"`
}

// MetricSummary is a metric's distribution in one mode.
type MetricSummary struct {
	Summary
	Unit string `json:"unit,omitempty"`
}

// Fidelity compares one metric of one mode to the baseline.
type Fidelity struct {
	Metric    string  `json:"metric"`
	Mode      string  `json:"mode"`
	TDF       float64 `json:"tdf"`
	Auto      bool    `json:"auto,omitempty"`
	RatioMean Num     `json:"ratio_mean"`
	RatioP50  Num     `json:"ratio_p50"`
	RatioP99  Num     `json:"ratio_p99"`
	// 95% bootstrap intervals of the ratios ([lo, hi]).
	CIMean [2]Num `json:"ci_mean"`
	CIP50  [2]Num `json:"ci_p50"`
	CIP99  [2]Num `json:"ci_p99"`
	// KS is the two-sample Kolmogorov-Smirnov distance to the baseline;
	// KSCritical the distance that n and the baseline's n can resolve at
	// 5%: when it exceeds the tolerance, KS is judged by it instead.
	KS         Num `json:"ks"`
	KSCritical Num `json:"ks_critical"`
	N          int `json:"n"`
	BaseN      int `json:"base_n"`
	// Within: every ratio and the KS distance within tolerance.
	Within bool `json:"within"`
	// Outside names the checks that failed.
	Outside []string `json:"outside,omitempty"`
	// Valid: this mode's and the baseline's runs are all valid.
	Valid     bool      `json:"valid"`
	Tolerance Tolerance `json:"tolerance"`
}

// RunSummary is one run in the report.
type RunSummary struct {
	Mode    string   `json:"mode"`
	TDF     float64  `json:"tdf"`
	Auto    bool     `json:"auto,omitempty"`
	Rep     int      `json:"rep"`
	Valid   bool     `json:"valid"`
	Reasons []string `json:"reasons,omitempty"`
	Keepup  Keepup   `json:"keepup"`
	Samples int      `json:"samples"`
	Real    float64  `json:"real_seconds"`
	Virtual float64  `json:"virtual_seconds"`
}

// maxRunBytes and maxSamplesBytes bound what a report reads per run.
const (
	maxRunBytes     = 64 << 20
	maxSamplesBytes = 512 << 20
)

// LoadReport reads a results directory written by Run and computes the
// report.
func LoadReport(dir string) (*Report, error) {
	b, err := readBounded(filepath.Join(dir, experimentFile), maxRunBytes)
	if err != nil {
		return nil, fmt.Errorf("load results: %w", err)
	}
	var info ExperimentInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("load results: decode %s: %w", experimentFile, err)
	}
	runDirs, _ := filepath.Glob(filepath.Join(dir, runsDir, "*", runFile))
	sort.Strings(runDirs)
	var results []*RunResult
	var samples [][]Record
	for _, p := range runDirs {
		b, err := readBounded(p, maxRunBytes)
		if err != nil {
			return nil, fmt.Errorf("load results: %w", err)
		}
		var r RunResult
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("load results: decode %s: %w", p, err)
		}
		recs, err := readSamples(filepath.Join(filepath.Dir(p), samplesFile))
		if err != nil {
			return nil, err
		}
		results = append(results, &r)
		samples = append(samples, recs)
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("load results from %s: %w", dir, ErrNoResults)
	}
	return buildReport(dir, info, results, samples), nil
}

func readSamples(path string) ([]Record, error) {
	b, err := readBounded(path, maxSamplesBytes)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load samples: %w", err)
	}
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("load samples %s: %w", path, err)
		}
		if !math.IsNaN(r.Value) && !math.IsInf(r.Value, 0) {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}

// buildReport aggregates runs into mode reports and fidelity rows. Runs
// are judged again with today's DefaultThresholds (the report's
// experiment.thresholds says which), so that results of older runs read
// the same as new ones; a failed run stays invalid.
func buildReport(dir string, info ExperimentInfo, results []*RunResult, samples [][]Record) *Report {
	info.Thresholds = DefaultThresholds
	for _, r := range results {
		if r.Error == "" {
			r.Reasons = DefaultThresholds.Judge(r.Keepup)
			r.Valid = len(r.Reasons) == 0
		}
	}
	rep := &Report{Name: info.Name, Dir: dir, Info: info, Tolerances: info.Tolerances, results: results}
	// Modes in the order of the plan, then any others found.
	var modes []Mode
	seen := map[Mode]bool{}
	for _, m := range info.Modes {
		if !seen[m] {
			seen[m] = true
			modes = append(modes, m)
		}
	}
	for _, r := range results {
		if !seen[r.Mode] {
			seen[r.Mode] = true
			modes = append(modes, r.Mode)
		}
	}
	names := map[string]bool{}
	units := map[string]string{}
	for _, m := range modes {
		mr := ModeReport{Mode: m.Kind, TDF: m.TDF, Auto: m.Auto, Metrics: map[string]MetricSummary{}}
		var runs []int
		for i, r := range results {
			if r.Mode != m {
				continue
			}
			mr.Runs++
			if r.Valid {
				mr.ValidRuns++
			}
			for _, why := range r.Reasons {
				mr.Reasons = append(mr.Reasons, fmt.Sprintf("run %d: %s", r.Rep, why))
			}
			runs = append(runs, i)
			rep.Runs = append(rep.Runs, RunSummary{Mode: m.Kind, TDF: m.TDF, Auto: m.Auto, Rep: r.Rep, Valid: r.Valid, Reasons: r.Reasons,
				Keepup: r.Keepup, Samples: r.Samples, Real: r.RealSeconds, Virtual: r.VirtualSeconds})
		}
		mr.Valid = mr.Runs > 0 && mr.ValidRuns == mr.Runs
		use := runs
		if mr.ValidRuns > 0 {
			use = nil
			for _, i := range runs {
				if results[i].Valid {
					use = append(use, i)
				}
			}
		}
		groups := map[string][][]float64{}
		var ks []Keepup
		for _, i := range use {
			r := results[i]
			mr.RealSeconds += r.RealSeconds / float64(len(use))
			mr.VirtualSeconds += r.VirtualSeconds / float64(len(use))
			if m.Auto {
				final := m.TDF
				if n := len(r.TDFChanges); n > 0 {
					final = r.TDFChanges[n-1].To
				}
				mr.FinalTDF += final / float64(len(use))
			}
			ks = append(ks, r.Keepup)
			per := map[string][]float64{}
			var recs []Record
			if i < len(samples) {
				recs = samples[i]
			}
			for _, s := range recs {
				per[s.Metric] = append(per[s.Metric], s.Value)
				units[s.Metric] = s.Unit
				names[s.Metric] = true
			}
			for k, v := range per {
				groups[k] = append(groups[k], v)
			}
		}
		mr.Keepup = meanKeepup(ks)
		for k, g := range groups {
			mr.Metrics[k] = MetricSummary{Summary: Summarize(pool(g)), Unit: units[k]}
		}
		rep.Modes = append(rep.Modes, mr)
		rep.samples = append(rep.samples, groups)
	}
	for n := range names {
		rep.Metrics = append(rep.Metrics, n)
	}
	sort.Strings(rep.Metrics)
	base := -1
	for i, m := range rep.Modes {
		if m.Mode == Baseline {
			base = i
		}
	}
	if base < 0 {
		return rep
	}
	for _, metric := range rep.Metrics {
		bg := rep.samples[base][metric]
		if len(bg) == 0 {
			continue
		}
		for i, m := range rep.Modes {
			g := rep.samples[i][metric]
			if i == base || len(g) == 0 {
				continue
			}
			rep.Fidelity = append(rep.Fidelity, fidelity(metric, m, rep.Modes[base], bg, g, info.Tolerances.For(metric)))
		}
	}
	return rep
}

func fidelity(metric string, m, base ModeReport, bg, g [][]float64, tol Tolerance) Fidelity {
	f := Fidelity{Metric: metric, Mode: m.Mode, TDF: m.TDF, Auto: m.Auto, Tolerance: tol, Valid: m.Valid && base.Valid}
	mean := ratioCI(bg, g, statMean, false)
	p50 := RatioCI(bg, g, statP50)
	p99 := RatioCI(bg, g, statP99)
	f.RatioMean, f.CIMean = Num(mean.Value), [2]Num{Num(mean.Lo), Num(mean.Hi)}
	f.RatioP50, f.CIP50 = Num(p50.Value), [2]Num{Num(p50.Lo), Num(p50.Hi)}
	f.RatioP99, f.CIP99 = Num(p99.Value), [2]Num{Num(p99.Lo), Num(p99.Hi)}
	pb, pm := pool(bg), pool(g)
	f.N, f.BaseN = len(pm), len(pb)
	f.KS = Num(KS(pb, pm))
	f.KSCritical = Num(KSCritical(len(pm), len(pb), 0.05))
	if !within(mean.Value, tol.Mean) {
		f.Outside = append(f.Outside, "mean")
	}
	if !within(p50.Value, tol.P50) {
		f.Outside = append(f.Outside, "p50")
	}
	if !within(p99.Value, tol.P99) {
		f.Outside = append(f.Outside, "p99")
	}
	if !(float64(f.KS) <= max(tol.KS, float64(f.KSCritical))) {
		f.Outside = append(f.Outside, "ks")
	}
	f.Within = len(f.Outside) == 0
	return f
}

// meanKeepup averages keep-up summaries (worst values stay worst).
func meanKeepup(ks []Keepup) Keepup {
	var k Keepup
	if len(ks) == 0 {
		return k
	}
	k.MinHostIdle = 1
	for _, x := range ks {
		n := float64(len(ks))
		k.Samples += x.Samples
		k.MeanHostIdle += x.MeanHostIdle / n
		if !math.IsNaN(x.MinHostIdle) {
			k.MinHostIdle = min(k.MinHostIdle, x.MinHostIdle)
		}
		k.MeanWait += x.MeanWait / n
		k.MaxWait = max(k.MaxWait, x.MaxWait)
		k.Throttled += x.Throttled / n
		k.LateFraction += x.LateFraction / n
		k.MaxLateMs = max(k.MaxLateMs, x.MaxLateMs)
		k.Delivered += x.Delivered
		k.Drops += x.Drops
		k.MeanTraced += x.MeanTraced / n
	}
	return k
}

// label names a mode in tables: baseline, scaled k=4, scaled k=auto.
func (m ModeReport) label() string {
	return Mode{Kind: m.Mode, TDF: m.TDF, Auto: m.Auto}.String()
}

// Num is a float that encodes NaN and infinities (a ratio to a zero
// baseline, an interval with too few samples) as JSON null.
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON implements json.Unmarshaler (null is NaN).
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = Num(f)
	return err
}

// JSON encodes the report, indented.
func (r *Report) JSON() ([]byte, error) {
	return json.MarshalIndent(r, "", "  ")
}
