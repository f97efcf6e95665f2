package netd

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/vmux/vmux/diecast/netem"
	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/diecast/topology"
	"github.com/vmux/vmux/rt/clock"
)

// Status is an experiment as `vmux net status` shows it.
type Status struct {
	Name        string       `json:"name"`
	TDF         float64      `json:"tdf"`
	Subnet      string       `json:"subnet"`
	Ready       bool         `json:"ready"`
	DaemonPid   int          `json:"daemon_pid"`
	DaemonAlive bool         `json:"daemon_alive"`
	Created     time.Time    `json:"created"`
	Log         string       `json:"log"`
	Nodes       []NodeStatus `json:"nodes"`
	// Clock is a dilated experiment's clock as its owner (the daemon)
	// answers: the factor in force, paused or not, virtual now.
	Clock *clock.Status `json:"clock,omitempty"`
	// TCPFreeze says whether a pause of the clock freezes the nodes' TCP
	// ("on", or "off (why)"), and LastFreeze what the last pause froze.
	TCPFreeze  string        `json:"tcp_freeze,omitempty"`
	LastFreeze *FreezeReport `json:"last_freeze,omitempty"`
	// Config lists every directed link with its parameters as written
	// (virtual) and as applied (real: scaled by the factor in force, the
	// clock's for a dilated experiment).
	Config []LinkConfig `json:"link_config,omitempty"`
	// Links are the emulator's counters, refreshed every few seconds.
	Links *netem.Stats `json:"links,omitempty"`
}

// LinkConfig is one directed link's parameters, in the spec's units.
type LinkConfig struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Virtual string `json:"virtual"`
	Real    string `json:"real"`
}

func describe(p topology.LinkParams) string {
	return fmt.Sprintf("%v, %v latency, %v jitter, %v loss, %v queue", p.Bandwidth, p.Latency, p.Jitter, p.Loss, p.Queue)
}

// NodeStatus is a node with its liveness.
type NodeStatus struct {
	NodeState
	Alive bool `json:"alive"`
}

// GetStatus reads experiment name's state and checks what still runs.
func GetStatus(name string) (*Status, error) {
	st, err := Load(name)
	if err != nil {
		return nil, err
	}
	s := &Status{Name: st.Name, TDF: st.TDF, Subnet: st.Subnet, Ready: st.Ready, DaemonPid: st.Daemon.Pid,
		DaemonAlive: st.DaemonAlive(), Created: st.Created, Log: st.LogFile, TCPFreeze: st.TCPFreeze, LastFreeze: st.LastFreeze}
	for _, n := range st.Nodes {
		s.Nodes = append(s.Nodes, NodeStatus{NodeState: n, Alive: node.Running(n.Pid, n.StartTime)})
	}
	if st.Launcher == node.SupervisedLauncherName && s.DaemonAlive {
		if cs, err := clock.Ask(name, clock.Request{Op: "status"}); err == nil {
			s.Clock = &cs
		}
	}
	if nw, err := topology.Load(specPath(name)); err == nil {
		k := nw.TDF
		if s.Clock != nil {
			if ck, err := s.Clock.Factor(); err == nil {
				k = ck
			}
		}
		for _, l := range nw.Links {
			s.Config = append(s.Config, LinkConfig{From: l.From, To: l.To, Virtual: describe(l.Virtual), Real: describe(l.Virtual.Scale(k))})
		}
	}
	if b, err := os.ReadFile(statsPath(name)); err == nil {
		var ls netem.Stats
		if json.Unmarshal(b, &ls) == nil {
			s.Links = &ls
		}
	}
	return s, nil
}
