//go:build linux

package cast

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/diecast/tcprto"
	"github.com/vmux/vmux/internal/linux"
)

// TCPScaling is what ScaleTCP changes in each node's network namespace.
// The kernel's TCP runs in real time under process-level dilation; these
// are the per-netns knobs of this kernel whose unit is time, so scaling
// them by k makes the stack's timers look unchanged from inside. The
// initial RTO (1 s), which no per-namespace knob reaches, is scaled by a
// BPF program on each node's cgroup (scaleInitialRTO, diecast/tcprto).
// What cannot be reached at all (delayed-ACK bounds of 40-200 ms, pacing
// and TSQ clocks, CUBIC's time-based window growth) is listed in
// docs/design/cast.md with what it costs.
type TCPScaling struct {
	// Sysctls are net.ipv4 files multiplied by k (values in their own
	// units: us, ms, ns, s).
	Sysctls []string
	// CC, if set, is the congestion control every node uses.
	CC string
}

// DefaultTCPScaling is what scaled mode applies (chosen by the TCP timer
// study, docs/benchmarks.md "Kernel TCP timers under dilation").
var DefaultTCPScaling = TCPScaling{
	Sysctls: []string{"tcp_rto_min_us", "tcp_comp_sack_delay_ns", "tcp_comp_sack_slack_ns", "tcp_min_rtt_wlen", "tcp_fin_timeout"},
}

// tcpScaling is the policy ScaleTCP applies (a variable for the study).
var tcpScaling = DefaultTCPScaling

// ScaleTCP applies the TCP scaling policy at TDF k to every node of a
// running experiment and returns what it set ("node: name=value").
func ScaleTCP(st *netd.State, k float64) ([]string, error) {
	return tcpScaling.Apply(st, k)
}

// Apply sets the policy in every node's netns.
func (p TCPScaling) Apply(st *netd.State, k float64) ([]string, error) {
	var out []string
	var errs []error
	for _, n := range st.Nodes {
		err := linux.InNetns(linux.NetnsPath(n.Pid), func() error {
			for _, s := range p.Sysctls {
				v, err := scaleSysctl(s, k)
				if errors.Is(err, os.ErrNotExist) {
					continue // not on this kernel
				}
				if err != nil {
					return err
				}
				out = append(out, fmt.Sprintf("%s: %s=%s", n.Name, s, v))
			}
			if p.CC != "" {
				if err := writeSysctl("tcp_congestion_control", p.CC); err != nil {
					return err
				}
				out = append(out, fmt.Sprintf("%s: tcp_congestion_control=%s", n.Name, p.CC))
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("scale tcp in node %s: %w", n.Name, err))
		}
	}
	return out, errors.Join(errs...)
}

// scaleInitialRTO makes every node's TCP connections start with k x the
// kernel's initial RTO: one program, attached to each node's cgroup v2
// directory. The caller closes the scaler (it detaches the program) and
// sets a new k on it when the experiment's k changes. On an error nothing
// is attached (the scaler is nil).
func scaleInitialRTO(st *netd.State, k float64) (*tcprto.Scaler, []string, error) {
	s, err := tcprto.New(k)
	if err != nil {
		return nil, nil, fmt.Errorf("scale tcp initial rto: %w", err)
	}
	var out []string
	for _, n := range st.Nodes {
		dir := node.BPFCgroup(n.Cgroups)
		if dir == "" {
			s.Close()
			return nil, nil, fmt.Errorf("scale tcp initial rto in node %s: no cgroup v2 directory (a cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified is needed)", n.Name)
		}
		if err := s.Attach(dir); err != nil {
			s.Close()
			return nil, nil, fmt.Errorf("scale tcp initial rto in node %s: %w", n.Name, err)
		}
		out = append(out, fmt.Sprintf("%s: initial_rto=%v", n.Name, s.RTO()))
	}
	return s, out, nil
}

func sysctlPath(name string) string { return filepath.Join("/proc/sys/net/ipv4", name) }

// scaleSysctl multiplies a numeric sysctl of the calling thread's netns.
func scaleSysctl(name string, k float64) (string, error) {
	b, err := os.ReadFile(sysctlPath(name))
	if err != nil {
		return "", err
	}
	cur, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %q is not a number", name, b)
	}
	v := strconv.FormatInt(int64(float64(cur)*k), 10)
	return v, writeSysctl(name, v)
}

func writeSysctl(name, v string) error {
	f, err := os.OpenFile(sysctlPath(name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", name, v, err)
	}
	return nil
}
