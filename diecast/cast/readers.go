package cast

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// Sample is one measured value of a metric.
type Sample struct {
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
}

// Output is what one execution of an item left to read: its stdout and
// stderr, and its working directory (per-transaction logs and the like).
type Output struct {
	Stdout, Stderr []byte
	WorkDir        string
}

// ReaderFunc turns an execution's output into samples. Names are relative
// to the item (the runner prefixes "ITEM.").
type ReaderFunc func(Output) ([]Sample, error)

// readers are the built-in metric readers by the name the spec uses.
var readers = map[string]ReaderFunc{
	"iperf3":          readIperf3,
	"redis-benchmark": readRedisBenchmark,
	"wrk":             readWrk,
	"pgbench":         readPgbench,
	"json":            readJSONLines,
}

// ReaderNames lists the built-in readers, sorted.
func ReaderNames() []string {
	out := make([]string, 0, len(readers))
	for n := range readers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Read runs the reader called name.
func Read(name string, o Output) ([]Sample, error) {
	f, ok := readers[name]
	if !ok {
		return nil, fmt.Errorf("read metrics: %w: %q (known: %s)", ErrUnknownReader, name, strings.Join(ReaderNames(), ", "))
	}
	s, err := f(o)
	if err != nil {
		return s, fmt.Errorf("read %s metrics: %w", name, err)
	}
	return s, nil
}

// lines calls fn on every line of b, trimmed.
func lines(b []byte, fn func(string)) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fn(strings.TrimSpace(sc.Text()))
	}
}
