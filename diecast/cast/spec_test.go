package cast

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmux/vmux/diecast/topology"
)

const testSpec = `name: castt
tdf: 2
nodes:
  srv: {cpu: 1}
  cli: {cpu: 1, count: 2}
switches: [s1]
links:
  - {ends: [srv, s1], bandwidth: 100Mbit, latency: 1ms}
  - {ends: [cli, s1], bandwidth: 100Mbit, latency: 1ms}
workload:
  repeat: 2
  services:
    redis: {node: srv, command: "redis-server", ready: {port: 6379}}
  jobs:
    bench: {node: cli, command: [redis-benchmark, -h, srv], after: [redis], metrics: redis-benchmark, repeat: 3}
    warm: {node: cli1, command: "true", after: [redis]}
    last: {node: srv, command: "true", after: [bench, warm], start: 2s}
`

func TestParseExperiment(t *testing.T) {
	e, err := Parse([]byte(testSpec))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range e.Items {
		names = append(names, it.Name)
	}
	if got := strings.Join(names, " "); got != "redis bench warm last" {
		t.Errorf("order %q", got)
	}
	b := e.Items[1]
	if strings.Join(b.Nodes, ",") != "cli1,cli2" || b.Repeat != 3 || b.Service || !e.Items[0].Service || e.Items[0].Ready.Port != 6379 {
		t.Errorf("bench %+v", b)
	}
	if e.Repeat != 2 || e.Timeout != DefaultTimeout || e.Tol.Mean != 0.05 || e.Tol.P99 != 0.1 || e.Tol.KS != 0.1 {
		t.Errorf("experiment %+v", e)
	}
}

func TestParseExperimentErrors(t *testing.T) {
	for _, c := range []struct{ edit, want string }{
		{"node: cli1,", `workload.jobs.warm.node: "cli9" is not a node or group`},
		{"after: [bench, warm]", `workload.jobs.last.after[0]: "nope" is not a service or job`},
		{"metrics: redis-benchmark", `workload.jobs.bench.metrics[0]: "ab" is not a metrics reader`},
		{"ready: {port: 6379}", "workload.services.redis.ready: give exactly one of port, command and output (got 2)"},
		{"after: [redis], metrics", "after: forms a cycle: bench -> last -> bench"},
		{"jobs:\n", "workload.jobs.redis: \"redis\" is both a service and a job"},
	} {
		var spec string
		switch c.edit {
		case "node: cli1,":
			spec = strings.Replace(testSpec, "node: cli1,", "node: cli9,", 1)
		case "after: [bench, warm]":
			spec = strings.Replace(testSpec, "after: [bench, warm]", "after: [nope, warm]", 1)
		case "metrics: redis-benchmark":
			spec = strings.Replace(testSpec, "metrics: redis-benchmark", "metrics: [ab]", 1)
		case "ready: {port: 6379}":
			spec = strings.Replace(testSpec, "ready: {port: 6379}", "ready: {port: 6379, output: Ready}", 1)
		case "after: [redis], metrics":
			spec = strings.Replace(testSpec, "after: [redis], metrics", "after: [redis, last], metrics", 1)
		case "jobs:\n":
			spec = strings.Replace(testSpec, "jobs:\n", "jobs:\n    redis: {node: srv, command: ls}\n", 1)
		}
		_, err := Parse([]byte(spec))
		if !errors.Is(err, topology.ErrInvalidSpec) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.edit, err, c.want)
		}
	}
	// No workload at all.
	_, err := Parse([]byte(strings.Split(testSpec, "workload:")[0]))
	if !errors.Is(err, topology.ErrInvalidSpec) || !strings.Contains(err.Error(), "workload.jobs: none given") {
		t.Errorf("no workload: %v", err)
	}
	// Unknown keys come from the topology parser, with the line.
	_, err = Parse([]byte(strings.Replace(testSpec, "repeat: 2", "repaet: 2", 1)))
	if !errors.Is(err, topology.ErrInvalidSpec) || !strings.Contains(err.Error(), `line 11: unknown key "repaet"`) {
		t.Errorf("unknown key: %v", err)
	}
}

func TestLoadRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(fifo); !errors.Is(err, ErrNotRegular) {
		t.Errorf("fifo: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, make([]byte, topology.MaxSpecBytes+1), 0o600)
	if _, err := Load(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("big: %v", err)
	}
}

func TestModeSpec(t *testing.T) {
	e, err := Parse([]byte(testSpec))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mode{{Kind: Baseline, TDF: 1}, {Kind: Scaled, TDF: 8}, {Kind: Naive, TDF: 8}} {
		b, err := e.ModeSpec(m)
		if err != nil {
			t.Fatal(err)
		}
		s, err := topology.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		nw, err := topology.Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		if s.Workload != nil || nw.TDF.Float64() != m.SpecTDF() || nw.Links[0].Real.Latency != topology.Duration(float64(1e6)*m.SpecTDF()) {
			t.Errorf("%v: tdf %v, workload %v, real latency %v", m, nw.TDF, s.Workload, nw.Links[0].Real.Latency)
		}
	}
}

func TestPlan(t *testing.T) {
	ms, err := Plan(nil, []float64{4, 10, 4})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID())
	}
	if got := strings.Join(ids, " "); got != "baseline scaled-k4 naive-k4 scaled-k10 naive-k10" {
		t.Errorf("plan %q", got)
	}
	if _, err := Plan([]string{"fast"}, nil); !errors.Is(err, ErrBadMode) {
		t.Errorf("bad mode: %v", err)
	}
	if ms, _ := Plan([]string{Scaled}, nil); len(ms) != 1 || ms[0].TDF != DefaultTDF {
		t.Errorf("default tdf: %v", ms)
	}
}

func TestPlanAuto(t *testing.T) {
	ms, err := Plan(nil, []float64{0, 4})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID())
	}
	if got := strings.Join(ids, " "); got != "baseline scaled-auto scaled-k4 naive-k4" {
		t.Errorf("plan %q", got)
	}
	if !ms[1].Auto || ms[1].TDF != AutoStart || ms[1].String() != "scaled k=auto" {
		t.Errorf("auto mode %+v", ms[1])
	}
}
