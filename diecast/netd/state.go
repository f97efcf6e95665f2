package netd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/vmux/vmux/diecast/node"
)

// RunRoot holds one directory per experiment (state, spec, hosts file, log,
// exec sockets). It is fixed: the daemon, its callers and down after a
// crash must all find it without being told.
const RunRoot = "/run/vmux"

// Dir is the run directory of experiment name.
func Dir(name string) string { return filepath.Join(RunRoot, name) }

func statePath(name string) string { return filepath.Join(Dir(name), "state.json") }
func logPath(name string) string   { return filepath.Join(Dir(name), "log") }
func specPath(name string) string  { return filepath.Join(Dir(name), "spec.yaml") }
func hostsPath(name string) string { return filepath.Join(Dir(name), "hosts") }
func statsPath(name string) string { return filepath.Join(Dir(name), "stats.json") }
func sockPath(name, n string) string {
	return filepath.Join(Dir(name), "nodes", n+".sock")
}

// State is everything needed to find, inspect and tear down an experiment,
// kept as JSON in /run/vmux/<name>/state.json and rewritten atomically as
// bring-up progresses (so that a crash half-way is still cleanable).
type State struct {
	Name      string      `json:"name"`
	TDF       float64     `json:"tdf"`
	Factor    string      `json:"tdf_exact,omitempty"` // the TDF as written ("1/3")
	Subnet    string      `json:"subnet"`
	Daemon    Proc        `json:"daemon"`
	Ready     bool        `json:"ready"`
	Created   time.Time   `json:"created"`
	Nodes     []NodeState `json:"nodes"`
	Switches  []string    `json:"switches,omitempty"`
	LogFile   string      `json:"log"`
	Interface string      `json:"interface"` // name of every node's TUN
	// Launcher starts every node process: "" plain, or
	// node.SupervisedLauncherName (dilated on the experiment's clock, which
	// `vmux clock` finds under the experiment's name).
	Launcher string `json:"launcher,omitempty"`
	// Lead is the emulator's delivery lead (see UpOptions.Lead).
	Lead time.Duration `json:"lead_ns,omitempty"`
	// Writable are the host directories every node may write
	// (UpOptions.Writable).
	Writable []string `json:"writable,omitempty"`
	// PidNS is the daemon's pid namespace (inode): the pids here mean
	// something only there (pidns.go).
	PidNS uint64 `json:"pid_ns,omitempty"`
	// TCPFreeze says whether a pause of a dilated experiment's clock
	// freezes the nodes' TCP sockets ("on") or not, and why ("off (...)").
	TCPFreeze string `json:"tcp_freeze,omitempty"`
	// LastFreeze is what the last pause froze.
	LastFreeze *FreezeReport `json:"last_freeze,omitempty"`
}

// Proc identifies a process across pid reuse.
type Proc struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// NodeState is one node: its sandbox record plus its network identity.
type NodeState struct {
	node.State
	Address string  `json:"address"` // with prefix length
	Group   string  `json:"group,omitempty"`
	CPU     float64 `json:"cpu,omitempty"` // real share of a core (after TDF)
	Memory  int64   `json:"memory,omitempty"`
}

// save writes st atomically (temp file + rename).
func (st *State) save() error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := writePrivate(statePath(st.Name), b); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// Load reads the state of experiment name; ErrNotFound if it is not up.
func Load(name string) (*State, error) {
	b, err := os.ReadFile(statePath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("load state %s: %w", statePath(name), err)
	}
	if err := st.checkPidNS(); err != nil {
		return nil, err
	}
	return &st, nil
}

// Exists reports whether anything of experiment name is there: its state
// or its run directory (the remains of a crash count: down cleans them).
func Exists(name string) (bool, error) {
	if err := node.ValidName(name); err != nil {
		return false, err
	}
	if _, err := os.Lstat(Dir(name)); err == nil {
		return true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("find %s: %w", name, err)
	}
	return false, nil
}

// List names the experiments with a run directory, sorted.
func List() ([]string, error) {
	ents, err := os.ReadDir(RunRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list experiments: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Resolve picks the experiment: name if given, else the only one up.
func Resolve(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	all, err := List()
	if err != nil {
		return "", err
	}
	switch len(all) {
	case 0:
		return "", fmt.Errorf("find experiment: %w", ErrNotFound)
	case 1:
		return all[0], nil
	}
	return "", fmt.Errorf("find experiment among %v: %w", all, ErrAmbiguous)
}

// Node returns the state of node n.
func (st *State) Node(n string) (*NodeState, error) {
	for i := range st.Nodes {
		if st.Nodes[i].Name == n {
			return &st.Nodes[i], nil
		}
	}
	return nil, fmt.Errorf("find node %q in %s: %w", n, st.Name, ErrNoNode)
}

// DaemonAlive reports whether the experiment's daemon still runs.
func (st *State) DaemonAlive() bool { return node.Running(st.Daemon.Pid, st.Daemon.StartTime) }
