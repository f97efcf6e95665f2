package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vmux/vmux/internal/safefile"
)

// Spec is the declarative experiment, as written in YAML. It is data only:
// Compile validates it and turns it into a Network.
type Spec struct {
	// Name names the experiment (a DNS label: letters, digits, '-').
	Name string `yaml:"name"`
	// TDF is the time-dilation factor k (default 1): a number or a
	// fraction ("1/3"), kept exact. Links are applied scaled: bandwidth /
	// k, latency and jitter x k, queue unchanged.
	TDF *Factor `yaml:"tdf"`
	// Subnet is the IPv4 prefix node addresses come from (default
	// 10.<120-219>.0.0/16, derived from Name).
	Subnet string `yaml:"subnet"`
	// Nodes maps a node (or group) name to its resources.
	Nodes map[string]NodeSpec `yaml:"nodes"`
	// Switches are the names of forwarding-only vertices.
	Switches []string `yaml:"switches"`
	// Links join two vertices (nodes, groups or switches).
	Links []LinkSpec `yaml:"links"`
	// Workload is what vmux cast runs on the nodes (workload.go); the
	// network ignores it.
	Workload *WorkloadSpec `yaml:"workload"`
}

// NodeSpec gives one node's resources, or a group's when Count > 0.
type NodeSpec struct {
	// CPU is a share of one core (0.5 = half a core); 0 = no limit.
	CPU float64 `yaml:"cpu"`
	// Memory is the memory limit; 0 = no limit.
	Memory ByteSize `yaml:"memory"`
	// Disk throttles block I/O.
	Disk DiskSpec `yaml:"disk"`
	// Address is the node's IPv4 address in the subnet (assigned if empty).
	Address string `yaml:"address"`
	// Count makes this entry a group: name "web" with count 3 gives nodes
	// web1, web2, web3, and a link end "web" links each of them.
	Count int `yaml:"count"`
	// Root is a directory to use as the node's root file system (read-only
	// in the node, like the host's by default); empty: the host's.
	Root string `yaml:"root"`
	// Writable lists host directories the node may write (bound at the
	// same path, read-write): every other path of its file system is
	// read-only. For data a node must leave on the host, or a disk that
	// its disk throttle applies to (its scratch /tmp is memory).
	Writable []string `yaml:"writable"`
	// Privileged turns the node's sandbox off: its processes are the
	// host's root with every capability, in their own network, pid, mount,
	// uts and ipc namespaces only (docs/security.md). Default false.
	Privileged bool `yaml:"privileged"`
}

// DiskSpec throttles a node's block I/O; zero fields mean no limit.
type DiskSpec struct {
	Read      ByteRate `yaml:"read"`
	Write     ByteRate `yaml:"write"`
	ReadIOPS  int64    `yaml:"read_iops"`
	WriteIOPS int64    `yaml:"write_iops"`
	// LatencyModel: when the node runs dilated by k, each read, write and
	// fsync in its writable directories completes k times the host disk's
	// service time after it begins (package diskmodel), so the node sees
	// the disk's latency as well as its scaled rates. Default false.
	LatencyModel bool `yaml:"latency_model"`
}

// LinkParams are the parameters of one direction of a link, in the
// experiment's virtual units. Zero bandwidth means unlimited.
type LinkParams struct {
	Bandwidth Bitrate  `yaml:"bandwidth"`
	Latency   Duration `yaml:"latency"`
	Jitter    Duration `yaml:"jitter"`
	Loss      Fraction `yaml:"loss"`
	// Queue is the drop-tail queue in bytes (default: max(64KiB, 100 ms of
	// bandwidth)).
	Queue ByteSize `yaml:"queue"`
	// Reorder lets jitter reorder packets (default: FIFO, no reordering).
	Reorder bool `yaml:"reorder"`
}

// DirParams overrides some parameters in one direction; nil keeps the
// link's value.
type DirParams struct {
	Bandwidth *Bitrate  `yaml:"bandwidth"`
	Latency   *Duration `yaml:"latency"`
	Jitter    *Duration `yaml:"jitter"`
	Loss      *Fraction `yaml:"loss"`
	Queue     *ByteSize `yaml:"queue"`
}

// LinkSpec is an undirected link with the same parameters both ways,
// unless Forward (ends[0] -> ends[1]) or Reverse override them.
type LinkSpec struct {
	Ends       []string `yaml:"ends"`
	LinkParams `yaml:",inline"`
	Forward    *DirParams `yaml:"forward"`
	Reverse    *DirParams `yaml:"reverse"`
}

// MaxSpecBytes bounds the size of a spec file. YAML decoding takes up to
// ~120 bytes of memory per byte of input (a 4 MiB list of 200,000 links
// took 500 MiB and 1 s to refuse): 1 MiB holds a spec of a thousand nodes
// many times over and bounds that at ~130 MiB.
const MaxSpecBytes = 1 << 20

// Parse decodes a YAML spec, rejecting unknown keys. It does not validate
// the topology: Compile does.
func Parse(data []byte) (*Spec, error) {
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("parsing spec: %w", specErr("(file)", "larger than %d bytes", MaxSpecBytes))
	}
	if err := checkShape(data); err != nil {
		return nil, fmt.Errorf("parsing spec: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("parsing spec: %w", specErr("(file)", "empty spec: give at least name, nodes and links"))
		}
		return nil, fmt.Errorf("parsing spec: %w", explainYAML(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("parsing spec: %w", specErr("(file)", "more than one YAML document; give one"))
	}
	return &s, nil
}

// ReadFile reads a spec file: a regular file only (a FIFO, a device such as
// /dev/zero or a directory is refused without blocking or reading it) of at
// most MaxSpecBytes, a bound enforced while reading. Read a spec once and
// give the bytes to Decode (or Parse): reading it again may read something
// else.
func ReadFile(path string) ([]byte, error) {
	data, err := safefile.ReadRegular(path, MaxSpecBytes)
	if errors.Is(err, safefile.ErrTooLarge) || errors.Is(err, safefile.ErrNotRegular) {
		// Not a spec at all: classified as such, the cause kept.
		return nil, fmt.Errorf("reading spec: %w", &SpecError{Path: "(file)", Msg: "give a regular file of at most " + fmt.Sprint(MaxSpecBytes>>20) + " MiB", Err: err})
	}
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	return data, nil
}

// ParseFile reads (ReadFile) and parses a spec file.
func ParseFile(path string) (*Spec, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Load reads (ReadFile), parses and compiles a spec file.
func Load(path string) (*Network, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	n, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// Decode parses and compiles a spec held in memory.
func Decode(data []byte) (*Network, error) {
	s, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return Compile(s)
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type topology\.(\w+)`)

// validKeys lists the keys of each spec type, for unknown-key messages.
var validKeys = map[string]string{
	"Spec":      "name, tdf, subnet, nodes, switches, links, workload",
	"NodeSpec":  "cpu, memory, disk, address, count, root, writable, privileged",
	"DiskSpec":  "read, write, read_iops, write_iops, latency_model",
	"LinkSpec":  "ends, bandwidth, latency, jitter, loss, queue, reorder, forward, reverse",
	"DirParams": "bandwidth, latency, jitter, loss, queue",
	// The workload section (workload.go).
	"WorkloadSpec":   "repeat, timeout, services, jobs, tolerances",
	"ItemSpec":       "node, command, env, after, start, ready, repeat, timeout, metrics, allow_fail",
	"ReadySpec":      "port, command, output, timeout",
	"TolerancesSpec": "mean, p50, p99, ks, metrics",
}

// explainYAML rewrites yaml's type-level messages into spec terms.
func explainYAML(err error) error {
	var ue *UnitError
	if errors.As(err, &ue) {
		return err
	}
	msg := err.Error()
	if m := unknownField.FindAllStringSubmatch(msg, -1); m != nil {
		var parts []string
		for i, f := range m {
			if i == maxReported {
				parts = append(parts, fmt.Sprintf("and %d more", len(m)-i))
				break
			}
			parts = append(parts, fmt.Sprintf("line %s: unknown key %q (valid keys here: %s)", f[1], short(f[2]), validKeys[f[3]]))
		}
		return &SpecError{Path: "(yaml)", Msg: strings.Join(parts, "; ")}
	}
	msg = strings.ReplaceAll(msg, "yaml: ", "")
	msg = strings.ReplaceAll(msg, "topology.", "")
	if len(msg) > 4*maxMsg { // yaml lists every type error
		msg = msg[:4*maxMsg] + "..."
	}
	return &SpecError{Path: "(yaml)", Msg: msg}
}

// Factor is a time-dilation factor as written in a spec: a number (10,
// 2.5) or a fraction ("1/3"). Compile parses it exactly (vclock.ParseTDF).
type Factor string

// UnmarshalYAML takes the scalar as written, so that 1/3 stays exact.
func (f *Factor) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: tdf must be a number or a fraction such as 1/3", n.Line)
	}
	*f = Factor(n.Value)
	return nil
}
