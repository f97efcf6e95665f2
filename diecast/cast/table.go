package cast

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report as the terminal summary: per run mode its
// validity, then per metric the baseline's distribution and each mode's
// ratios to it, KS distance and verdict.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "experiment %s: %d runs (%s)\n", r.Name, len(r.Runs), r.Dir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tTDF\tRUNS\tVALID\tREAL s\tVIRTUAL s\tHOST IDLE\tCPU DENIED\tLATE PKTS\tDROPS")
	for _, m := range r.Modes {
		k := strconv.FormatFloat(m.TDF, 'g', -1, 64)
		if m.Auto {
			k = fmt.Sprintf("auto %g->%.3g", m.TDF, m.FinalTDF)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d/%d\t%.1f\t%.1f\t%.0f%%\t%.0f%%\t%.2f%%\t%d\n", m.Mode, k, m.Runs, m.ValidRuns, m.Runs,
			m.RealSeconds, m.VirtualSeconds, 100*m.Keepup.MeanHostIdle, 100*m.Keepup.MeanWait, 100*m.Keepup.LateFraction, m.Keepup.Drops)
	}
	tw.Flush()
	for _, m := range r.Modes {
		for _, why := range dedupe(m.Reasons) {
			fmt.Fprintf(w, "  %s NOT VALID: %s\n", m.label(), why)
		}
	}
	if len(r.Fidelity) == 0 {
		fmt.Fprintln(w, "no fidelity table: no baseline run, or no metric in common")
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "METRIC\tMODE\tN\tMEAN\tP50\tP99\tx MEAN [95% CI]\tx P50\tx P99\tKS\tVERDICT\t")
	base := r.mode(Baseline, 1)
	for _, metric := range r.Metrics {
		if base == nil {
			break
		}
		b, ok := base.Metrics[metric]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t\t\t\t\t\t\n", metric, "baseline", b.N, fmtVal(b.Mean, b.Unit), fmtVal(b.P50, b.Unit), fmtVal(b.P99, b.Unit))
		for _, f := range r.Fidelity {
			if f.Metric != metric {
				continue
			}
			mr := r.modeOf(f)
			m := mr.Metrics[metric]
			verdict := "within"
			if !f.Within {
				verdict = "OFF: " + strings.Join(f.Outside, ",")
			}
			if !f.Valid {
				verdict += " (invalid run)"
			}
			fmt.Fprintf(tw, "\t%s\t%d\t%s\t%s\t%s\t%s [%s-%s]\t%s\t%s\t%s\t%s\t\n", mr.label(), m.N,
				fmtVal(m.Mean, m.Unit), fmtVal(m.P50, m.Unit), fmtVal(m.P99, m.Unit),
				fmtRatio(f.RatioMean), fmtRatio(f.CIMean[0]), fmtRatio(f.CIMean[1]), fmtRatio(f.RatioP50), fmtRatio(f.RatioP99),
				fmtRatio(f.KS), verdict)
		}
	}
	return tw.Flush()
}

// modeOf is the mode a fidelity row is about.
func (r *Report) modeOf(f Fidelity) *ModeReport {
	for i := range r.Modes {
		if m := &r.Modes[i]; m.Mode == f.Mode && m.TDF == f.TDF && m.Auto == f.Auto {
			return m
		}
	}
	return &ModeReport{Mode: f.Mode, TDF: f.TDF, Auto: f.Auto}
}

func (r *Report) mode(kind string, tdf float64) *ModeReport {
	for i := range r.Modes {
		if r.Modes[i].Mode == kind && (kind == Baseline || r.Modes[i].TDF == tdf) {
			return &r.Modes[i]
		}
	}
	return nil
}

func dedupe(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		// "run N: why" -> why, counted once
		_, why, ok := strings.Cut(x, ": ")
		if !ok {
			why = x
		}
		if !seen[why] {
			seen[why] = true
			out = append(out, why)
		}
	}
	return out
}

func fmtRatio(n Num) string {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return "-"
	}
	return fmt.Sprintf("%.3f", float64(n))
}

// fmtVal prints a value with its unit, scaling bit rates and rates.
func fmtVal(v float64, unit string) string {
	switch unit {
	case "bit/s":
		switch {
		case v >= 1e9:
			return fmt.Sprintf("%.3g Gbit/s", v/1e9)
		case v >= 1e6:
			return fmt.Sprintf("%.3g Mbit/s", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.3g kbit/s", v/1e3)
		}
	case "1/s":
		return fmt.Sprintf("%.4g/s", v)
	case "", "count":
		return fmt.Sprintf("%.4g", v)
	}
	return fmt.Sprintf("%.4g %s", v, unit)
}
