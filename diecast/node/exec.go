package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

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
	// Signals, if set, are forwarded to the process group while it runs;
	// with TTY, SIGWINCH instead resizes the pty to Stdin's size.
	Signals <-chan os.Signal
	// TTY runs the command on a pseudo-terminal allocated in the node (its
	// controlling terminal), relayed to Stdin and Stdout. The caller puts
	// its own terminal in raw mode.
	TTY bool
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
	r := execRequest{Argv: o.Argv, Env: o.Env, Dir: o.Dir, TTY: o.TTY}
	if o.TTY {
		if ws, err := linux.GetWinsize(o.Stdin); err == nil {
			r.Rows, r.Cols = ws.Rows, ws.Cols
		}
	}
	req, _ := json.Marshal(r)
	if len(req) > maxMsg {
		return fail(fmt.Errorf("%w: command and environment exceed %d bytes", ErrBadConfig, maxMsg))
	}
	if err := linux.SendWithFds(c, req, o.Stdin, o.Stdout, o.Stderr); err != nil {
		return fail(err)
	}
	replies := make(chan reply, 2)
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, files, err := linux.RecvWithFds(c, buf)
			if err == nil && n == 0 {
				err = io.EOF
			}
			if err != nil {
				closeAll(files)
				errc <- fmt.Errorf("read from node init: %w", err)
				return
			}
			var r reply
			if err := json.Unmarshal(buf[:n], &r.execReply); err != nil {
				closeAll(files)
				errc <- fmt.Errorf("decode reply: %w", err)
				return
			}
			if r.PTY && len(files) == 1 {
				r.master = files[0]
			} else {
				closeAll(files)
			}
			replies <- r
			if r.Exited || r.Error != "" {
				return // the last message: stop before EOF can race it
			}
		}
	}()
	var st ExitStatus
	var pty *ptyRelay
	defer func() {
		if pty != nil {
			pty.close()
		}
	}()
	for {
		select {
		case r := <-replies:
			switch {
			case r.Denied:
				return fail(fmt.Errorf("%w: %s", ErrDenied, r.Error))
			case r.Error != "":
				return fail(launchError(r.Error, r.Status))
			case r.Exited:
				st.Code, st.Signal = r.Code, r.Signal
				if pty != nil {
					pty.drain(time.Second)
				}
				return st, nil
			default:
				st.Pid = r.Pid
				if r.master != nil {
					pty = relay(r.master, o.Stdin, o.Stdout)
				}
			}
		case s := <-o.Signals:
			if s == syscall.SIGWINCH {
				if pty != nil {
					if ws, err := linux.GetWinsize(o.Stdin); err == nil {
						_ = linux.SetWinsize(pty.master, ws)
					}
				}
				continue
			}
			if sig, ok := s.(syscall.Signal); ok {
				b, _ := json.Marshal(execSignal{Signal: int(sig)})
				_, _ = c.Write(b)
			}
		case err := <-errc:
			return fail(err)
		}
	}
}

// reply is a message from init with the pty master it may carry.
type reply struct {
	execReply
	master *os.File
}

// ptyRelay copies the caller's stdin to a pty master and the master's
// output to the caller's stdout.
type ptyRelay struct {
	master *os.File
	out    chan struct{} // closed when the master's output is drained
}

func relay(master, stdin, stdout *os.File) *ptyRelay {
	p := &ptyRelay{master: master, out: make(chan struct{})}
	go func() { _, _ = io.Copy(master, stdin) }() // ends with the process (CLI exits)
	go func() {
		defer close(p.out)
		_, _ = io.Copy(stdout, master) // EIO once the slave's last holder exits
	}()
	return p
}

// drain waits for the rest of the output once the command has exited.
func (p *ptyRelay) drain(timeout time.Duration) {
	select {
	case <-p.out:
	case <-time.After(timeout):
	}
}

func (p *ptyRelay) close() { p.master.Close() }
