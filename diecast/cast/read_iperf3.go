package cast

import (
	"encoding/json"
	"fmt"
)

// iperf3Doc is the part of iperf3 -J output the reader uses.
type iperf3Doc struct {
	Error     string `json:"error"`
	Intervals []struct {
		Sum iperf3Sum `json:"sum"`
	} `json:"intervals"`
	End struct {
		SumSent     *iperf3Sum `json:"sum_sent"`
		SumReceived *iperf3Sum `json:"sum_received"`
		Sum         *iperf3Sum `json:"sum"` // UDP
	} `json:"end"`
}

type iperf3Sum struct {
	Seconds       float64  `json:"seconds"`
	BitsPerSecond float64  `json:"bits_per_second"`
	Retransmits   *float64 `json:"retransmits"`
	JitterMs      *float64 `json:"jitter_ms"`
	LostPercent   *float64 `json:"lost_percent"`
	Omitted       bool     `json:"omitted"`
}

// readIperf3 reads iperf3 -J (client side): goodput (received, bit/s),
// retransmits, one interval_goodput sample per report interval, and for
// UDP jitter and loss.
func readIperf3(o Output) ([]Sample, error) {
	var d iperf3Doc
	if err := json.Unmarshal(o.Stdout, &d); err != nil {
		return nil, fmt.Errorf("decode iperf3 -J output: %w (%w)", err, ErrNoMetrics)
	}
	if d.Error != "" {
		return nil, fmt.Errorf("iperf3 reports: %s", d.Error)
	}
	var out []Sample
	for _, iv := range d.Intervals {
		if !iv.Sum.Omitted && iv.Sum.Seconds > 0 {
			out = append(out, Sample{Metric: "interval_goodput", Value: iv.Sum.BitsPerSecond, Unit: "bit/s"})
		}
	}
	e := d.End
	switch {
	case e.SumReceived != nil:
		out = append(out, Sample{Metric: "goodput", Value: e.SumReceived.BitsPerSecond, Unit: "bit/s"})
		if e.SumSent != nil && e.SumSent.Retransmits != nil {
			out = append(out, Sample{Metric: "retransmits", Value: *e.SumSent.Retransmits, Unit: "count"})
		}
	case e.Sum != nil:
		out = append(out, Sample{Metric: "goodput", Value: e.Sum.BitsPerSecond, Unit: "bit/s"})
		if e.Sum.JitterMs != nil {
			out = append(out, Sample{Metric: "jitter", Value: *e.Sum.JitterMs, Unit: "ms"})
		}
		if e.Sum.LostPercent != nil {
			out = append(out, Sample{Metric: "lost", Value: *e.Sum.LostPercent, Unit: "%"})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("iperf3 -J output without results: %w", ErrNoMetrics)
	}
	return out, nil
}
