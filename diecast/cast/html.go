package cast

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
)

// Colours of the modes in every plot: the baseline black, scaled modes
// in blues, naive modes in reds (darker for larger k).
var (
	baseColour   = "#000000"
	scaledColour = []string{"#1f6fd1", "#0b3d91", "#5fa8ff", "#002060"}
	naiveColour  = []string{"#d62728", "#8c1010", "#ff7f7f", "#600000"}
)

func (r *Report) colour(i int) string {
	m := r.Modes[i]
	n := 0
	for j := 0; j < i; j++ {
		if r.Modes[j].Mode == m.Mode {
			n++
		}
	}
	switch m.Mode {
	case Scaled:
		return scaledColour[n%len(scaledColour)]
	case Naive:
		return naiveColour[n%len(naiveColour)]
	}
	return baseColour
}

func (r *Report) label(i int) string { return r.Modes[i].label() }

// svg sizes.
const (
	plotW, plotH = 560, 300
	padL, padB   = 70, 40
	padT, padR   = 20, 20
)

// HTML renders the report as one self-contained page: per metric the CDF
// overlay of every mode and the ratio bars with their intervals, the
// fidelity table, and each run's keep-up timeline, as inline SVG.
func (r *Report) HTML() ([]byte, error) {
	var metrics []htmlMetric
	for _, m := range r.Metrics {
		metrics = append(metrics, htmlMetric{Name: m, CDF: template.HTML(r.cdfSVG(m)), Ratios: template.HTML(r.ratioSVG(m))})
	}
	var timelines []htmlTimeline
	for _, res := range r.results {
		timelines = append(timelines, htmlTimeline{Title: fmt.Sprintf("%s, run %d", res.Mode, res.Rep), Valid: res.Valid,
			Reasons: res.Reasons, SVG: template.HTML(timelineSVG(res) + tdfSVG(res))})
	}
	var b bytes.Buffer
	err := pageTmpl.Execute(&b, map[string]any{"R": r, "Metrics": metrics, "Timelines": timelines, "Legend": template.HTML(r.legend())})
	if err != nil {
		return nil, fmt.Errorf("render html report: %w", err)
	}
	return b.Bytes(), nil
}

type htmlMetric struct {
	Name        string
	CDF, Ratios template.HTML
}

type htmlTimeline struct {
	Title   string
	Valid   bool
	Reasons []string
	SVG     template.HTML
}

func (r *Report) legend() string {
	var b strings.Builder
	for i := range r.Modes {
		fmt.Fprintf(&b, `<span class="key"><svg width="24" height="10"><line x1="0" y1="5" x2="24" y2="5" stroke="%s" stroke-width="3"/></svg> %s</span> `,
			r.colour(i), template.HTMLEscapeString(r.label(i)))
	}
	return b.String()
}

// axis maps [lo, hi] onto [a, b] pixels.
type axis struct{ lo, hi, a, b float64 }

func (x axis) at(v float64) float64 {
	if x.hi == x.lo {
		return (x.a + x.b) / 2
	}
	return x.a + (v-x.lo)/(x.hi-x.lo)*(x.b-x.a)
}

// niceTicks returns about n round values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		return []float64{lo}
	}
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/float64(n))))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(step*m) <= float64(n) {
			step *= m
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func svgOpen(b *strings.Builder, class, title string) {
	fmt.Fprintf(b, `<svg class="%s" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img"><title>%s</title>`,
		class, plotW, plotH, plotW, plotH, template.HTMLEscapeString(title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="#ccc"/>`, padL, padT, plotW-padL-padR, plotH-padT-padB)
}

func fmtTick(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.4g", v), ".0") }

func xTicks(b *strings.Builder, x axis, unit string) {
	for _, t := range niceTicks(x.lo, x.hi, 6) {
		px := x.at(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>`,
			px, padT, px, plotH-padB, px, plotH-padB+14, fmtTick(t))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" text-anchor="middle">%s</text>`, (padL+plotW-padR)/2, plotH-6, template.HTMLEscapeString(unit))
}

func yTicks(b *strings.Builder, y axis, label string) {
	for _, t := range niceTicks(y.lo, y.hi, 5) {
		py := y.at(t)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`,
			padL, py, plotW-padR, py, padL-4, py+4, fmtTick(t))
	}
	fmt.Fprintf(b, `<text x="14" y="%d" font-size="11" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>`,
		(padT+plotH-padB)/2, (padT+plotH-padB)/2, template.HTMLEscapeString(label))
}

// cdfSVG overlays the empirical CDFs of metric in every mode.
func (r *Report) cdfSVG(metric string) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	unit := ""
	for i := range r.Modes {
		s := pool(r.samples[i][metric])
		for _, v := range s {
			lo, hi = min(lo, v), max(hi, v)
		}
		if ms, ok := r.Modes[i].Metrics[metric]; ok {
			unit = ms.Unit
		}
	}
	var b strings.Builder
	svgOpen(&b, "cdf", "CDF of "+metric)
	if math.IsInf(lo, 0) {
		b.WriteString("</svg>")
		return b.String()
	}
	if lo == hi {
		lo, hi = lo-math.Max(1, math.Abs(lo))*0.05, hi+math.Max(1, math.Abs(hi))*0.05
	}
	x := axis{lo, hi, padL, plotW - padR}
	y := axis{0, 1, plotH - padB, padT}
	xTicks(&b, x, unit)
	yTicks(&b, y, "fraction of samples")
	for i := range r.Modes {
		s := sorted(pool(r.samples[i][metric]))
		if len(s) == 0 {
			continue
		}
		var pts []string
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x.at(s[0]), y.at(0)))
		for j, v := range s {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x.at(v), y.at(float64(j)/float64(len(s)))),
				fmt.Sprintf("%.1f,%.1f", x.at(v), y.at(float64(j+1)/float64(len(s)))))
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x.b, y.at(1)))
		fmt.Fprintf(&b, `<polyline class="mode-%s" fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s (n=%d)</title></polyline>`,
			r.Modes[i].Mode, r.colour(i), strings.Join(pts, " "), template.HTMLEscapeString(r.label(i)), len(s))
	}
	b.WriteString("</svg>")
	return b.String()
}

// ratioSVG draws, for each mode against the baseline, bars for the ratio
// of the mean, p50 and p99 with their 95% intervals, the line at 1 and
// the tolerance bands.
func (r *Report) ratioSVG(metric string) string {
	var rows []Fidelity
	for _, f := range r.Fidelity {
		if f.Metric == metric {
			rows = append(rows, f)
		}
	}
	var b strings.Builder
	svgOpen(&b, "ratios", "ratios to the baseline of "+metric)
	if len(rows) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12">no baseline to compare with</text></svg>`, padL+10, padT+20)
		return b.String()
	}
	lo, hi := 1.0, 1.0
	for _, f := range rows {
		for _, v := range []Num{f.RatioMean, f.RatioP50, f.RatioP99, f.CIMean[0], f.CIMean[1], f.CIP50[0], f.CIP50[1], f.CIP99[0], f.CIP99[1]} {
			if fv := float64(v); !math.IsNaN(fv) && !math.IsInf(fv, 0) {
				lo, hi = min(lo, fv), max(hi, fv)
			}
		}
	}
	lo, hi = min(lo, 0.8), max(hi, 1.2)
	lo = math.Max(0, lo-0.05)
	hi += 0.05
	y := axis{lo, hi, plotH - padB, padT}
	yTicks(&b, y, "ratio to baseline")
	tol := r.Tolerances.For(metric)
	fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="#2ca02c" fill-opacity="0.12"/>`, padL, y.at(1+tol.Mean), plotW-padL-padR, y.at(1-tol.Mean)-y.at(1+tol.Mean))
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#2ca02c" stroke-width="1.5"/>`, padL, y.at(1), plotW-padR, y.at(1))
	groupW := float64(plotW-padL-padR) / float64(len(rows))
	barW := groupW / 4.5
	for gi, f := range rows {
		mi := slices.IndexFunc(r.Modes, func(m ModeReport) bool { return m.Mode == f.Mode && m.TDF == f.TDF && m.Auto == f.Auto })
		col := r.colour(mi)
		x0 := float64(padL) + groupW*float64(gi) + groupW*0.1
		for j, st := range []struct {
			name string
			v    Num
			ci   [2]Num
		}{{"mean", f.RatioMean, f.CIMean}, {"p50", f.RatioP50, f.CIP50}, {"p99", f.RatioP99, f.CIP99}} {
			v := float64(st.v)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			bx := x0 + float64(j)*barW*1.3
			top, bot := y.at(max(v, 1)), y.at(min(v, 1))
			fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="%.2f"><title>%s %s ratio %.3f [%.3f, %.3f]</title></rect>`,
				bx, top, barW, math.Max(bot-top, 1), col, 0.9-0.25*float64(j), template.HTMLEscapeString(r.label(mi)), st.name, v, float64(st.ci[0]), float64(st.ci[1]))
			if l, h := float64(st.ci[0]), float64(st.ci[1]); !math.IsNaN(l) && !math.IsNaN(h) {
				cx := bx + barW/2
				fmt.Fprintf(&b, `<path class="ci" d="M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f" stroke="#333" stroke-width="1.2" fill="none"/>`,
					cx, y.at(l), y.at(h), cx-4, y.at(l), cx+4, cx-4, y.at(h), cx+4)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>`, bx+barW/2, plotH-padB+12, st.name)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="%s">%s</text>`, x0+barW*1.8, plotH-padB+26, col, template.HTMLEscapeString(r.label(mi)))
	}
	b.WriteString("</svg>")
	return b.String()
}

// timelineSVG plots a run's keep-up samples: host idle (fraction), the
// worst node's CPU wait and the throttled fraction over real time.
func timelineSVG(res *RunResult) string {
	var b strings.Builder
	svgOpen(&b, "timeline", fmt.Sprintf("keep-up timeline of %s run %d", res.Mode, res.Rep))
	tl := res.Timeline
	if len(tl) == 0 {
		b.WriteString("</svg>")
		return b.String()
	}
	tmax := tl[len(tl)-1].T
	ymax := 1.0
	for _, s := range tl {
		ymax = max(ymax, s.Wait)
	}
	x := axis{0, math.Max(tmax, 1e-3), padL, plotW - padR}
	y := axis{0, ymax, plotH - padB, padT}
	xTicks(&b, x, "real seconds")
	yTicks(&b, y, "fraction / tasks")
	series := []struct {
		name, col string
		v         func(KeepupSample) float64
	}{
		{"host idle", "#2ca02c", func(s KeepupSample) float64 { return s.HostIdle }},
		{"CPU share denied (worst node)", "#d62728", func(s KeepupSample) float64 { return s.Wait }},
		{"throttled periods", "#9467bd", func(s KeepupSample) float64 { return s.Throttled }},
	}
	for i, se := range series {
		var pts []string
		for _, s := range tl {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x.at(s.T), y.at(se.v(s))))
		}
		fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`, se.col, strings.Join(pts, " "), se.name)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="%s">%s</text>`, padL+8+i*130, padT+14, se.col, se.name)
	}
	b.WriteString("</svg>")
	return b.String()
}

// tdfSVG plots k over real time for an auto run (nothing otherwise).
func tdfSVG(res *RunResult) string {
	if !res.Mode.Auto || len(res.Timeline) == 0 {
		return ""
	}
	var b strings.Builder
	svgOpen(&b, "tdf", fmt.Sprintf("k over time, %s run %d", res.Mode, res.Rep))
	tl := res.Timeline
	kmax := 1.0
	for _, s := range tl {
		kmax = max(kmax, s.TDF)
	}
	x := axis{0, math.Max(tl[len(tl)-1].T, 1e-3), padL, plotW - padR}
	y := axis{0, kmax * 1.1, plotH - padB, padT}
	xTicks(&b, x, "real seconds")
	yTicks(&b, y, "k (time-dilation factor)")
	var pts []string
	for i, s := range tl {
		if i > 0 {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x.at(s.T), y.at(tl[i-1].TDF)))
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x.at(s.T), y.at(s.TDF)))
	}
	fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="#1f6fd1" stroke-width="2" points="%s"><title>k</title></polyline></svg>`, strings.Join(pts, " "))
	return b.String()
}

var pageTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"ratio": func(n Num) string { return fmtRatio(n) },
	"val":   fmtVal,
	"join":  strings.Join,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vmux cast: {{.R.Name}}</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}
td.l,th.l{text-align:left}.off{color:#b00;font-weight:bold}.ok{color:#070}.plots{display:flex;flex-wrap:wrap;gap:12px}
.key{margin-right:1.2em}h2{margin-top:1.6em}
</style></head><body>
<h1>Fidelity of {{.R.Name}}</h1>
<p>Results in <code>{{.R.Dir}}</code>, {{len .R.Runs}} runs on {{.R.Info.Host.CPUs}} CPUs (kernel {{.R.Info.Host.Kernel}}).
Tolerances: mean {{pct .R.Tolerances.Mean}}, p50 {{pct .R.Tolerances.P50}}, p99 {{pct .R.Tolerances.P99}}, KS {{.R.Tolerances.KS}}.</p>
<h2>Modes</h2>
<table id="modes"><tr><th class="l">mode</th><th>k</th><th>valid runs</th><th>real s</th><th>virtual s</th><th>host idle</th><th>CPU share denied</th><th>late packets</th><th>drops</th><th class="l">why not valid</th></tr>
{{range .R.Modes}}<tr><td class="l">{{.Mode}}</td><td>{{if .Auto}}auto {{.TDF}} &rarr; {{printf "%.3g" .FinalTDF}}{{else}}{{.TDF}}{{end}}</td><td {{if not .Valid}}class="off"{{end}}>{{.ValidRuns}}/{{.Runs}}</td><td>{{printf "%.1f" .RealSeconds}}</td><td>{{printf "%.1f" .VirtualSeconds}}</td>
<td>{{pct .Keepup.MeanHostIdle}}</td><td>{{pct .Keepup.MeanWait}}</td><td>{{pct .Keepup.LateFraction}}</td><td>{{.Keepup.Drops}}</td><td class="l">{{join .Reasons "; "}}</td></tr>
{{end}}</table>
<h2>Fidelity</h2>
<table id="fidelity"><tr><th class="l">metric</th><th class="l">mode</th><th>n</th><th>x mean [95% CI]</th><th>x p50</th><th>x p99</th><th>KS</th><th class="l">verdict</th></tr>
{{range .R.Fidelity}}<tr><td class="l">{{.Metric}}</td><td class="l">{{.Mode}} k={{if .Auto}}auto{{else}}{{.TDF}}{{end}}</td><td>{{.N}}</td><td>{{ratio .RatioMean}} [{{ratio (index .CIMean 0)}}, {{ratio (index .CIMean 1)}}]</td>
<td>{{ratio .RatioP50}}</td><td>{{ratio .RatioP99}}</td><td>{{ratio .KS}}</td>
<td class="l {{if .Within}}ok{{else}}off{{end}}">{{if .Within}}within{{else}}outside: {{join .Outside ", "}}{{end}}{{if not .Valid}} (invalid run){{end}}</td></tr>
{{end}}</table>
<h2>Distributions and ratios</h2>
<p>{{.Legend}}</p>
{{range .Metrics}}<h3>{{.Name}}</h3><div class="plots metric">{{.CDF}}{{.Ratios}}</div>
{{end}}
<h2>Keep-up timelines</h2>
<p>Host idle, the fraction of its CPU share denied to the most starved node while it had runnable tasks, and the fraction of CFS periods in which nodes hit their quota.</p>
<div class="plots">{{range .Timelines}}<div><h4>{{.Title}} {{if .Valid}}<span class="ok">valid</span>{{else}}<span class="off">not valid: {{join .Reasons "; "}}</span>{{end}}</h4>{{.SVG}}</div>
{{end}}</div>
</body></html>
`))
