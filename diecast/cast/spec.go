package cast

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vmux/vmux/diecast/topology"
)

// Defaults of the workload section.
const (
	DefaultTimeout      = 10 * time.Minute
	DefaultReadyTimeout = 30 * time.Second
	// MaxRepeat bounds repetitions (runs per mode, executions per job).
	MaxRepeat = 1000
)

// Experiment is a loaded, validated experiment spec: the topology, its
// workload compiled into items in start order, and the tolerances.
type Experiment struct {
	// Path is where the spec was read from; Raw its bytes (read once).
	Path string
	Raw  []byte
	Spec *topology.Spec
	Net  *topology.Network
	// Items in a start order that respects After (services and jobs).
	Items   []*Item
	Repeat  int
	Timeout time.Duration
	Tol     Tolerances
}

// Item is one service or job, resolved against the network.
type Item struct {
	Name    string
	Service bool
	// Target is the node or group named in the spec; Nodes its members.
	Target  string
	Nodes   []string
	Argv    []string
	Env     map[string]string
	After   []string
	Start   time.Duration // virtual
	Ready   *Ready
	Repeat  int
	Timeout time.Duration // virtual, per execution
	Metrics []string
	// AllowFail keeps a run going when the job exits non-zero.
	AllowFail bool
}

// Ready is a service's readiness condition (one of Port, Argv, Output).
type Ready struct {
	Port    int
	Argv    []string
	Output  *regexp.Regexp
	Timeout time.Duration // virtual
}

var itemName = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$`)

// envName is what an item may set; VMUX_ variables are the runner's.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Load reads an experiment spec (one bounded read of a regular file),
// parses it with the topology parser and validates its workload. Every
// problem is reported at once; errors.Is(err, topology.ErrInvalidSpec)
// holds for a bad spec.
func Load(path string) (*Experiment, error) {
	data, err := readBounded(path, topology.MaxSpecBytes)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	e, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e.Path = path
	return e, nil
}

// Parse parses and validates an experiment spec held in memory.
func Parse(data []byte) (*Experiment, error) {
	s, err := topology.Parse(data)
	if err != nil {
		return nil, err
	}
	nw, err := topology.Compile(s)
	if err != nil {
		return nil, err
	}
	e := &Experiment{Raw: data, Spec: s, Net: nw}
	if err := e.compileWorkload(); err != nil {
		return nil, fmt.Errorf("compiling workload of %q: %w", s.Name, err)
	}
	return e, nil
}

type wcompiler struct {
	errs []error
}

func (c *wcompiler) fail(path, format string, args ...any) {
	c.errs = append(c.errs, &topology.SpecError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (e *Experiment) compileWorkload() error {
	c := &wcompiler{}
	w := e.Spec.Workload
	if w == nil || len(w.Jobs) == 0 {
		c.fail("workload.jobs", "none given: an experiment needs at least one job to measure (%v)", ErrNoWorkload)
		return errors.Join(c.errs...)
	}
	e.Repeat = max(w.Repeat, 1)
	if w.Repeat < 0 || w.Repeat > MaxRepeat {
		c.fail("workload.repeat", "%d is out of range: give 1-%d runs per mode", w.Repeat, MaxRepeat)
	}
	e.Timeout = DefaultTimeout
	if w.Timeout > 0 {
		e.Timeout = time.Duration(w.Timeout)
	}
	members := map[string][]string{}
	for _, nd := range e.Net.Nodes {
		members[nd.Name] = []string{nd.Name}
		if nd.Group != "" {
			members[nd.Group] = append(members[nd.Group], nd.Name)
		}
	}
	byName := map[string]*Item{}
	add := func(kind string, m map[string]topology.ItemSpec, service bool) {
		for _, name := range sortedKeys(m) {
			is := m[name]
			path := fmt.Sprintf("workload.%s.%s", kind, name)
			if !itemName.MatchString(name) {
				c.fail(path, "%q is not a valid item name: use 1-63 lowercase letters, digits, '-' and '_'", name)
				continue
			}
			if _, dup := byName[name]; dup {
				c.fail(path, "%q is both a service and a job: names must be unique", name)
				continue
			}
			it := &Item{Name: name, Service: service, Target: is.Node, Argv: is.Command, Env: is.Env, After: is.After,
				Start: time.Duration(is.Start), Repeat: max(is.Repeat, 1), Timeout: time.Duration(is.Timeout),
				Metrics: is.Metrics, AllowFail: is.AllowFail}
			byName[name] = it
			c.item(path, it, is, members)
		}
	}
	add("services", w.Services, true)
	add("jobs", w.Jobs, false)
	for _, it := range byName {
		for i, a := range it.After {
			p := fmt.Sprintf("workload.%s.%s.after[%d]", kindOf(it), it.Name, i)
			switch {
			case a == it.Name:
				c.fail(p, "%q waits for itself", a)
			case byName[a] == nil:
				c.fail(p, "%q is not a service or job of this workload", a)
			}
		}
	}
	if len(c.errs) == 0 {
		order, cycle := topoSort(byName)
		if cycle != nil {
			c.fail("workload", "after: forms a cycle: %s", strings.Join(cycle, " -> "))
		}
		e.Items = order
	}
	e.Tol = defaultTolerances()
	if t := w.Tolerances; t != nil {
		e.Tol = c.tolerances("workload.tolerances", *t, e.Tol.Tolerance)
		e.Tol.Metrics = map[string]Tolerance{}
		for _, m := range sortedKeys(t.Metrics) {
			mt := t.Metrics[m]
			if len(mt.Metrics) > 0 {
				c.fail("workload.tolerances.metrics."+m, "per-metric tolerances cannot nest")
			}
			e.Tol.Metrics[m] = c.tolerances("workload.tolerances.metrics."+m, mt, e.Tol.Tolerance).Tolerance
		}
	}
	return errors.Join(c.errs...)
}

func kindOf(it *Item) string {
	if it.Service {
		return "services"
	}
	return "jobs"
}

// item checks one item's fields.
func (c *wcompiler) item(path string, it *Item, is topology.ItemSpec, members map[string][]string) {
	switch {
	case is.Node == "":
		c.fail(path+".node", "missing: name the node or group it runs on")
	case members[is.Node] == nil:
		c.fail(path+".node", "%q is not a node or group of this spec", is.Node)
	default:
		it.Nodes = members[is.Node]
	}
	if len(is.Command) == 0 || is.Command[len(is.Command)-1] == "" && len(is.Command) == 3 && is.Command[0] == "/bin/sh" {
		c.fail(path+".command", "missing: give the command (a string for sh -c, or a list of arguments)")
	}
	for k := range is.Env {
		if !envName.MatchString(k) || strings.HasPrefix(k, "VMUX_") {
			c.fail(path+".env", "%q: variable names are letters, digits and _, and VMUX_* are the runner's", k)
		}
	}
	if is.Repeat < 0 || is.Repeat > MaxRepeat {
		c.fail(path+".repeat", "%d is out of range: give 1-%d executions per run", is.Repeat, MaxRepeat)
	}
	for i, m := range is.Metrics {
		if _, ok := readers[m]; !ok {
			c.fail(fmt.Sprintf("%s.metrics[%d]", path, i), "%q is not a metrics reader (known: %s)", m, strings.Join(ReaderNames(), ", "))
		}
	}
	if it.Service {
		if is.Repeat > 1 {
			c.fail(path+".repeat", "a service runs once per run; repeat is for jobs")
		}
		if is.AllowFail {
			c.fail(path+".allow_fail", "is for jobs")
		}
		if is.Ready != nil {
			it.Ready = c.ready(path+".ready", is.Ready)
		}
	} else if is.Ready != nil {
		c.fail(path+".ready", "a job has no readiness: it runs to completion (make it a service, or order with after:)")
	}
}

func (c *wcompiler) ready(path string, r *topology.ReadySpec) *Ready {
	out := &Ready{Port: r.Port, Argv: r.Command, Timeout: DefaultReadyTimeout}
	if r.Timeout > 0 {
		out.Timeout = time.Duration(r.Timeout)
	}
	n := 0
	if r.Port != 0 {
		n++
		if r.Port < 1 || r.Port > 65535 {
			c.fail(path+".port", "%d is not a TCP port (1-65535)", r.Port)
		}
	}
	if len(r.Command) > 0 {
		n++
	}
	if r.Output != "" {
		n++
		re, err := regexp.Compile(r.Output)
		if err != nil {
			c.fail(path+".output", "%q is not a regular expression: %v", r.Output, err)
		}
		out.Output = re
	}
	if n != 1 {
		c.fail(path, "give exactly one of port, command and output (got %d)", n)
	}
	return out
}

func (c *wcompiler) tolerances(path string, t topology.TolerancesSpec, def Tolerance) Tolerances {
	out := Tolerances{Tolerance: def}
	if t.Mean > 0 {
		out.Mean = float64(t.Mean)
	}
	if t.P50 > 0 {
		out.P50 = float64(t.P50)
	}
	if t.P99 > 0 {
		out.P99 = float64(t.P99)
	}
	if t.KS != 0 {
		if !(t.KS > 0 && t.KS <= 1) || math.IsNaN(t.KS) {
			c.fail(path+".ks", "%v is out of range: a KS distance is in (0, 1]", t.KS)
		}
		out.KS = t.KS
	}
	return out
}

// topoSort orders items so that each comes after everything in its After
// (ties by name); it returns a cycle if there is one.
func topoSort(items map[string]*Item) ([]*Item, []string) {
	var order []*Item
	state := map[string]int{} // 1 visiting, 2 done
	var stack []string
	var cycle []string
	var visit func(n string) bool
	visit = func(n string) bool {
		switch state[n] {
		case 2:
			return true
		case 1:
			i := len(stack) - 1
			for i > 0 && stack[i] != n {
				i--
			}
			cycle = append(append([]string{}, stack[i:]...), n)
			return false
		}
		state[n] = 1
		stack = append(stack, n)
		deps := append([]string(nil), items[n].After...)
		sort.Strings(deps)
		for _, d := range deps {
			if !visit(d) {
				return false
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
		order = append(order, items[n])
		return true
	}
	for _, n := range sortedKeys(items) {
		if !visit(n) {
			return nil, cycle
		}
	}
	return order, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ModeSpec returns the spec as a network to bring up in mode m: the
// document as written, with tdf set to the mode's and the workload section
// removed (the network daemon has no use for it).
func (e *Experiment) ModeSpec(m Mode) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(e.Raw, &doc); err != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("derive %s spec: %w", m, errors.Join(err, topology.ErrInvalidSpec))
	}
	top := doc.Content[0]
	var kept []*yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		switch top.Content[i].Value {
		case "tdf", "workload":
			continue
		}
		kept = append(kept, top.Content[i], top.Content[i+1])
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: fmt.Sprint(m.SpecTDF())}
	top.Content = append([]*yaml.Node{{Kind: yaml.ScalarNode, Value: "tdf"}, k}, kept...)
	b, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("derive %s spec: %w", m, err)
	}
	return b, nil
}
