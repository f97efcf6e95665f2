package topology

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// WorkloadSpec is the `workload:` section of an experiment spec: what runs
// on the nodes and how its results are read. It is data only, decoded with
// the rest of the spec (unknown keys refused with the same messages); the
// experiment runner (diecast/cast) validates it against the compiled
// network and executes it. `vmux net up` ignores it.
type WorkloadSpec struct {
	// Repeat is the number of runs per mode (default 1; vmux cast run
	// --repeat overrides it).
	Repeat int `yaml:"repeat"`
	// Timeout bounds one run's workload in virtual time (default 10m).
	Timeout Duration `yaml:"timeout"`
	// Services start first and stay up until the run ends.
	Services map[string]ItemSpec `yaml:"services"`
	// Jobs run to completion; a run ends when every job has.
	Jobs map[string]ItemSpec `yaml:"jobs"`
	// Tolerances decide the fidelity verdicts.
	Tolerances *TolerancesSpec `yaml:"tolerances"`
}

// ItemSpec is one service or job.
type ItemSpec struct {
	// Node names the node, or a group: one instance runs on each member.
	Node string `yaml:"node"`
	// Command is an argv list, or a string run by /bin/sh -c.
	Command Command `yaml:"command"`
	// Env adds variables to the command's environment.
	Env map[string]string `yaml:"env"`
	// After lists items that must be ready (services) or done (jobs)
	// before this one starts.
	After []string `yaml:"after"`
	// Start delays the item by this much virtual time after its After
	// items (or the start of the run).
	Start Duration `yaml:"start"`
	// Ready is a service's readiness condition.
	Ready *ReadySpec `yaml:"ready"`
	// Repeat runs a job this many times in a row in each run (default 1).
	Repeat int `yaml:"repeat"`
	// Timeout bounds one execution of a job in virtual time (default: the
	// workload's timeout).
	Timeout Duration `yaml:"timeout"`
	// Metrics names the readers of the item's output: iperf3, redis-benchmark,
	// wrk, pgbench, json (lines {"metric","value","unit"}).
	Metrics Names `yaml:"metrics"`
	// AllowFail keeps the run going when the job exits non-zero.
	AllowFail bool `yaml:"allow_fail"`
}

// ReadySpec is when a service counts as ready; exactly one of Port, Command
// and Output.
type ReadySpec struct {
	// Port is a TCP port that accepts connections on the node's address.
	Port int `yaml:"port"`
	// Command succeeds (exit 0) in the node once the service is ready.
	Command Command `yaml:"command"`
	// Output is a regular expression matched against each line the service
	// writes (stdout or stderr).
	Output string `yaml:"output"`
	// Timeout bounds the wait in virtual time (default 30s).
	Timeout Duration `yaml:"timeout"`
}

// TolerancesSpec sets how close to the baseline a mode must come. Zero
// fields keep the defaults (mean and p50 within 5%, p99 within 10%, KS
// distance <= 0.1).
type TolerancesSpec struct {
	Mean Fraction `yaml:"mean"`
	P50  Fraction `yaml:"p50"`
	P99  Fraction `yaml:"p99"`
	KS   float64  `yaml:"ks"`
	// Metrics overrides the tolerances of single metrics by name.
	Metrics map[string]TolerancesSpec `yaml:"metrics"`
}

// Command is an argv, written as a YAML list or as one string for sh -c.
type Command []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *Command) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*c = Command{"/bin/sh", "-c", n.Value}
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*c = l
		return nil
	}
	return &SpecError{Path: "(yaml)", Msg: fmt.Sprintf("line %d: a command is a string (run by sh -c) or a list of arguments", n.Line)}
}

// Names is a list of names, also written as a single name.
type Names []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Names) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = Names{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}
