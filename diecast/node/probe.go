package node

import (
	"fmt"
	"net"
	"time"
)

// Probe checks that a node is up: its init still runs (the same process,
// not a zombie) and accepts connections on its exec socket. It is what
// vmux net up checks of every node before it reports success: a node whose
// init died during the bring-up (killed, or OOM-killed by its cgroup) fails
// here rather than at the first vmux exec.
func Probe(s State) error {
	if !Running(s.Pid, s.StartTime) {
		return fmt.Errorf("probe node %s: %w: init (pid %d) is not running", s.Name, ErrInitFailed, s.Pid)
	}
	c, err := net.DialTimeout("unixpacket", s.Socket, 2*time.Second)
	if err != nil {
		return fmt.Errorf("probe node %s: %w: exec socket: %w", s.Name, ErrInitFailed, err)
	}
	// Closing at once: init reads end-of-file, the probe's mark.
	return c.Close()
}
