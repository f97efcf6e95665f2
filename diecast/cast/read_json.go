package cast

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
)

// metricName restricts metric names (they become JSON keys, file names and
// HTML text).
var metricName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$`)

// readJSONLines reads lines of JSON {"metric": NAME, "value": X, "unit": U}
// on stdout; other lines are ignored, so a program may print anything else,
// and a run with no such line gives no sample (a job may report on some of
// its nodes only, as the etcd example's leader-kill does).
func readJSONLines(o Output) ([]Sample, error) {
	var out []Sample
	var perr error
	lines(o.Stdout, func(l string) {
		if !strings.HasPrefix(l, "{") || perr != nil {
			return
		}
		var s struct {
			Metric *string  `json:"metric"`
			Value  *float64 `json:"value"`
			Unit   string   `json:"unit"`
		}
		if json.Unmarshal([]byte(l), &s) != nil || s.Metric == nil || s.Value == nil {
			return
		}
		if !metricName.MatchString(*s.Metric) {
			perr = fmt.Errorf("metric name %q: use letters, digits and _.:/- (up to 128)", *s.Metric)
			return
		}
		if math.IsNaN(*s.Value) || math.IsInf(*s.Value, 0) {
			return
		}
		out = append(out, Sample{Metric: *s.Metric, Value: *s.Value, Unit: s.Unit})
	})
	if perr != nil {
		return nil, perr
	}
	return out, nil
}
