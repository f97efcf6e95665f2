package cast

import (
	"time"
)

// RunResult is one run: one mode, one repetition, from bring-up to
// teardown. It is written to DIR/runs/<mode>-r<rep>/run.json.
type RunResult struct {
	Mode Mode `json:"mode"`
	// Rep counts from 1.
	Rep     int       `json:"rep"`
	Started time.Time `json:"started"`
	// RealSeconds and VirtualSeconds span the workload (bring-up and
	// teardown excluded); virtual = real / k when dilated.
	RealSeconds    float64 `json:"real_seconds"`
	VirtualSeconds float64 `json:"virtual_seconds"`
	UpSeconds      float64 `json:"up_seconds"`
	// Valid is false when the run failed or the host did not keep up;
	// Reasons says why.
	Valid    bool           `json:"valid"`
	Reasons  []string       `json:"reasons,omitempty"`
	Error    string         `json:"error,omitempty"`
	Keepup   Keepup         `json:"keepup"`
	Timeline []KeepupSample `json:"timeline"`
	// Executions lists every execution of every item.
	Executions []Execution `json:"executions"`
	// TDFChanges lists how k moved in an auto run.
	TDFChanges []TDFChange `json:"tdf_changes,omitempty"`
	// TCP lists the per-node TCP settings applied (scaled mode).
	TCP []string `json:"tcp,omitempty"`
	// Samples counts the samples in samples.jsonl.
	Samples int `json:"samples"`
}

// TDFChange is one change of k during an auto run.
type TDFChange struct {
	Real    float64 `json:"real"`    // seconds since the workload started
	Virtual float64 `json:"virtual"` // the same instant in virtual seconds
	From    float64 `json:"from"`
	To      float64 `json:"to"`
	Why     string  `json:"why"`
}

// Execution is one execution of an item on one node.
type Execution struct {
	Item string `json:"item"`
	Node string `json:"node"`
	Iter int    `json:"iter"`
	// Start and End are virtual seconds since the workload started; End
	// is 0 for a service still running at teardown.
	Start float64 `json:"start"`
	End   float64 `json:"end,omitempty"`
	// Ready is when a service became ready (virtual seconds since start).
	Ready  float64 `json:"ready,omitempty"`
	Code   int     `json:"code"`
	Signal int     `json:"signal,omitempty"`
	Error  string  `json:"error,omitempty"`
	Stdout string  `json:"stdout"` // file, relative to the run directory
	Stderr string  `json:"stderr"`
}

// Record is one sample as stored (samples.jsonl): a metric value with
// where it came from.
type Record struct {
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	Node   string  `json:"node,omitempty"`
	Iter   int     `json:"iter"`
}
