package live

import (
	"math"
	"time"
)

// histogram counts durations in buckets of 10^(1/20) (about 12%), from
// 1 us to 10 s: enough resolution for percentiles of fault latency
// without keeping samples.
type histogram struct {
	n      int64
	bucket [histBuckets]int64
	sum    time.Duration
}

const (
	histPerDecade = 20
	histBuckets   = 7*histPerDecade + 1
)

func (h *histogram) add(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = min(int(math.Log10(us)*histPerDecade)+1, histBuckets-1)
	}
	h.bucket[i]++
	h.n++
	h.sum += d
}

func (h *histogram) merge(o *histogram) {
	h.n += o.n
	h.sum += o.sum
	for i := range h.bucket {
		h.bucket[i] += o.bucket[i]
	}
}

// quantile returns the q-quantile in microseconds (the upper edge of its
// bucket), 0 without samples.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.bucket {
		seen += c
		if seen >= want {
			return math.Round(math.Pow(10, float64(i)/histPerDecade)*10) / 10
		}
	}
	return math.Pow(10, 7)
}
