package cast

import (
	"fmt"
	"strconv"
	"strings"
)

// Mode kinds: the three sides of DieCast's comparison.
const (
	// Baseline is the spec as written at TDF 1: the system being modelled
	// (only meaningful where the host can hold it).
	Baseline = "baseline"
	// Scaled is DieCast: at TDF k every node's CPU share, disk rates and
	// link bandwidths are divided by k and latencies multiplied by k, and
	// every node process runs dilated, so each node perceives the spec.
	Scaled = "scaled"
	// Naive packs the nodes onto the same reduced resources as Scaled,
	// without dilation: what one gets without DieCast.
	Naive = "naive"
)

// Kinds lists the mode kinds in the order runs go.
var Kinds = []string{Baseline, Scaled, Naive}

// Mode is one configuration a run executes in.
type Mode struct {
	Kind string  `json:"mode"`
	TDF  float64 `json:"tdf"`
	// Auto (scaled only): k starts at TDF and the runner adjusts it while
	// the run goes to the smallest value the host keeps up with.
	Auto bool `json:"auto,omitempty"`
}

func (m Mode) String() string {
	if m.Kind == Baseline {
		return Baseline
	}
	if m.Auto {
		return m.Kind + " k=auto"
	}
	return fmt.Sprintf("%s k=%g", m.Kind, m.TDF)
}

// ID names the mode in file names: baseline, scaled-k4, naive-k10,
// scaled-auto.
func (m Mode) ID() string {
	if m.Kind == Baseline {
		return Baseline
	}
	if m.Auto {
		return m.Kind + "-auto"
	}
	return m.Kind + "-k" + strings.ReplaceAll(strconv.FormatFloat(m.TDF, 'g', -1, 64), ".", "_")
}

// Dilated reports whether the mode's node processes run dilated.
func (m Mode) Dilated() bool { return m.Kind == Scaled }

// SpecTDF is the tdf the mode's network is brought up with (the resource
// scaling): 1 for the baseline, k otherwise.
func (m Mode) SpecTDF() float64 {
	if m.Kind == Baseline {
		return 1
	}
	return m.TDF
}

// Factor is real seconds per virtual second of the mode's experiment
// clock: k when dilated, else 1 (for an auto mode, the starting k).
func (m Mode) Factor() float64 {
	if m.Dilated() {
		return m.TDF
	}
	return 1
}

// Plan expands mode kinds and TDFs into the runs' modes: the baseline once
// (TDF 1), then scaled and naive for each k, in that order. No kinds means
// all three. A k of 0 (--tdf auto) gives one scaled mode whose k the
// runner adjusts (AutoStart first); naive needs a fixed k and has none.
func Plan(kinds []string, tdfs []float64) ([]Mode, error) {
	if len(kinds) == 0 {
		kinds = Kinds
	}
	want := map[string]bool{}
	for _, k := range kinds {
		switch k {
		case Baseline, Scaled, Naive:
			want[k] = true
		default:
			return nil, fmt.Errorf("plan runs: %w: %q (give baseline, scaled or naive)", ErrBadMode, k)
		}
	}
	if len(tdfs) == 0 {
		tdfs = []float64{DefaultTDF}
	}
	var out []Mode
	if want[Baseline] {
		out = append(out, Mode{Kind: Baseline, TDF: 1})
	}
	seen := map[float64]bool{}
	for _, k := range tdfs {
		if k == 0 {
			if want[Scaled] && !seen[0] {
				out = append(out, Mode{Kind: Scaled, TDF: AutoStart, Auto: true})
			}
			seen[0] = true
			continue
		}
		if !(k >= 1) || k > MaxTDF {
			return nil, fmt.Errorf("plan runs: tdf %v: give 1 to %v", k, MaxTDF)
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		for _, kind := range []string{Scaled, Naive} {
			if want[kind] {
				out = append(out, Mode{Kind: kind, TDF: k})
			}
		}
	}
	return out, nil
}

// AutoStart is where k starts in an auto mode; AutoMax bounds it.
const (
	AutoStart = 2
	AutoMax   = 64
)

// DefaultTDF is k when none is given.
const DefaultTDF = 4

// MaxTDF bounds k (dilation below 1/1000 of real time is refused by vmux
// run, and no host needs more).
const MaxTDF = 1000
