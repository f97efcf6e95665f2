package node

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
)

// ExecOptions is a command to run inside a node.
type ExecOptions struct {
	Argv []string
	Env  []string // nil: none
	Dir  string   // "" : init's directory (/)
	// Stdin, Stdout and Stderr are passed to the process as they are (so a
	// terminal stays a terminal); all three are required.
	Stdin, Stdout, Stderr *os.File
	// Signals, if set, are forwarded to the process group while it runs.
	Signals <-chan os.Signal
}

// ExitStatus is how a command run in a node ended.
type ExitStatus struct {
	Pid    int `json:"pid"` // in the node's pid namespace
	Code   int `json:"code"`
	Signal int `json:"signal,omitempty"` // killed by this signal if > 0
}

// ShellCode is the status a shell would report: the exit code, or 128+signal.
func (s ExitStatus) ShellCode() int {
	if s.Signal > 0 {
		return 128 + s.Signal
	}
	return s.Code
}

// Exec runs a command through the init listening on socket and waits for it.
// The command runs in every namespace and the cgroup of the node, started by
// the node's launcher.
func Exec(node, socket string, o ExecOptions) (ExitStatus, error) {
	fail := func(err error) (ExitStatus, error) {
		return ExitStatus{}, &ExecError{Node: node, Argv: o.Argv, Err: err}
	}
	if len(o.Argv) == 0 {
		return fail(fmt.Errorf("%w: no command given", ErrBadConfig))
	}
	if o.Stdin == nil || o.Stdout == nil || o.Stderr == nil {
		return fail(fmt.Errorf("%w: stdin, stdout and stderr are required", ErrBadConfig))
	}
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: socket, Net: "unixpacket"})
	if err != nil {
		return fail(fmt.Errorf("connect to node init: %w", err))
	}
	defer c.Close()
	req, _ := json.Marshal(execRequest{Argv: o.Argv, Env: o.Env, Dir: o.Dir})
	if len(req) > maxMsg {
		return fail(fmt.Errorf("%w: command and environment exceed %d bytes", ErrBadConfig, maxMsg))
	}
	if err := linux.SendWithFds(c, req, o.Stdin, o.Stdout, o.Stderr); err != nil {
		return fail(err)
	}
	replies := make(chan execReply, 2)
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				errc <- fmt.Errorf("read from node init: %w", err)
				return
			}
			var r execReply
			if err := json.Unmarshal(buf[:n], &r); err != nil {
				errc <- fmt.Errorf("decode reply: %w", err)
				return
			}
			replies <- r
			if r.Exited || r.Error != "" {
				return // the last message: stop before EOF can race it
			}
		}
	}()
	var st ExitStatus
	for {
		select {
		case r := <-replies:
			switch {
			case r.Error != "":
				return fail(fmt.Errorf("%s", r.Error))
			case r.Exited:
				st.Code, st.Signal = r.Code, r.Signal
				return st, nil
			default:
				st.Pid = r.Pid
			}
		case s := <-o.Signals:
			if sig, ok := s.(syscall.Signal); ok {
				b, _ := json.Marshal(execSignal{Signal: int(sig)})
				_, _ = c.Write(b)
			}
		case err := <-errc:
			return fail(err)
		}
	}
}
