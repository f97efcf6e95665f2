package topology

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const workloadSpec = `name: w
nodes: {a: {}, b: {}}
links: [{ends: [a, b]}]
workload:
  repeat: 3
  timeout: 2m
  services:
    srv: {node: a, command: "redis-server --port 7000", ready: {port: 7000, timeout: 5s}}
  jobs:
    bench:
      node: b
      command: [redis-benchmark, -p, "7000"]
      after: [srv]
      start: 1s
      metrics: redis-benchmark
  tolerances: {mean: 3%, ks: 0.2, metrics: {bench.SET.rps: {p99: 20%}}}
`

func TestParseWorkload(t *testing.T) {
	s, err := Parse([]byte(workloadSpec))
	if err != nil {
		t.Fatal(err)
	}
	w := s.Workload
	if w == nil || w.Repeat != 3 || w.Timeout.String() != "2m0s" {
		t.Fatalf("workload header: %+v", w)
	}
	srv := w.Services["srv"]
	if !slices.Equal(srv.Command, []string{"/bin/sh", "-c", "redis-server --port 7000"}) || srv.Ready == nil || srv.Ready.Port != 7000 {
		t.Errorf("service: %+v", srv)
	}
	b := w.Jobs["bench"]
	if !slices.Equal(b.Command, []string{"redis-benchmark", "-p", "7000"}) || !slices.Equal(b.Metrics, []string{"redis-benchmark"}) ||
		!slices.Equal(b.After, []string{"srv"}) || b.Start.String() != "1s" {
		t.Errorf("job: %+v", b)
	}
	if tol := w.Tolerances; tol.Mean != 0.03 || tol.KS != 0.2 || tol.Metrics["bench.SET.rps"].P99 != 0.2 {
		t.Errorf("tolerances: %+v", tol)
	}
	// The network itself is unaffected by the section.
	if _, err := Compile(s); err != nil {
		t.Fatal(err)
	}
}

func TestParseWorkloadUnknownKeys(t *testing.T) {
	bad := strings.Replace(strings.Replace(workloadSpec, "timeout: 5s", "timout: 5s", 1), "after:", "afterr:", 1)
	_, err := Parse([]byte(bad))
	if !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("want ErrInvalidSpec, got %v", err)
	}
	for _, want := range []string{`line 8: unknown key "timout" (valid keys here: port, command, output, timeout)`, `line 13: unknown key "afterr"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	_, err = Parse([]byte(strings.Replace(workloadSpec, `command: "redis-server --port 7000"`, "command: {x: 1}", 1)))
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "line 8: a command is a string") {
		t.Errorf("command as a map: %v", err)
	}
}
