package netd

import (
	"encoding/json"
	"os"
	"time"

	"github.com/vmux/vmux/netem"
	"github.com/vmux/vmux/node"
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
	// Links are the emulator's counters, refreshed every few seconds.
	Links *netem.Stats `json:"links,omitempty"`
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
		DaemonAlive: st.DaemonAlive(), Created: st.Created, Log: st.LogFile}
	for _, n := range st.Nodes {
		s.Nodes = append(s.Nodes, NodeStatus{NodeState: n, Alive: node.Running(n.Pid, n.StartTime)})
	}
	if b, err := os.ReadFile(statsPath(name)); err == nil {
		var ls netem.Stats
		if json.Unmarshal(b, &ls) == nil {
			s.Links = &ls
		}
	}
	return s, nil
}
