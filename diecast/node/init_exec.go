package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
)

// handle serves one exec request on c.
func (in *initProc) handle(c *net.UnixConn) {
	defer c.Close()
	if !in.admit(c) {
		return
	}
	buf := make([]byte, maxMsg)
	n, files, err := linux.RecvWithFds(c, buf)
	defer closeAll(files)
	if err != nil {
		if !errors.Is(err, io.EOF) { // EOF: a Probe, or a client gone
			in.log.Error("exec request", "err", err)
		}
		return
	}
	var req execRequest
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		sendReply(c, execReply{Error: fmt.Sprintf("decode request: %v", err)})
		return
	}
	if len(files) != 3 {
		sendReply(c, execReply{Error: fmt.Sprintf("want stdin, stdout, stderr, got %d descriptors", len(files))})
		return
	}
	var master *os.File
	stdio := files
	if req.TTY {
		m, slave, err := linux.OpenPTY()
		if err != nil {
			sendReply(c, execReply{Error: fmt.Sprintf("allocate pty: %v", err)})
			return
		}
		defer m.Close()
		defer slave.Close()
		if req.Rows > 0 && req.Cols > 0 {
			_ = linux.SetWinsize(m, linux.Winsize{Rows: req.Rows, Cols: req.Cols})
		}
		master, stdio = m, []*os.File{slave, slave, slave}
	}
	done := make(chan linux.WaitStatus, 1)
	in.mu.Lock()
	// Children inherit oom_score_adj at fork: give them the default.
	if oerr := setOOMScoreAdj(in.oom.child); oerr != nil {
		in.log.Warn("reset oom_score_adj for launch", "err", oerr)
	}
	pid, err := in.sandbox.launch(in.launcher, &Process{Argv: req.Argv, Env: req.Env, Dir: execDir(req.Dir), Files: stdio, TTY: req.TTY})
	if oerr := setOOMScoreAdj(in.oom.init); oerr != nil {
		in.log.Warn("restore init oom_score_adj", "err", oerr)
	}
	if err == nil {
		in.children[pid] = done
	}
	in.mu.Unlock()
	closeAll(stdio) // the child has its copies
	if err != nil {
		sendReply(c, execReply{Error: err.Error(), Status: launchStatus(err)})
		return
	}
	in.log.Info("launched", "pid", pid, "argv", req.Argv, "tty", req.TTY)
	if master != nil {
		b, _ := json.Marshal(execReply{Pid: pid, PTY: true})
		_ = linux.SendWithFds(c, b, master)
		master.Close() // the client relays it now
	} else {
		sendReply(c, execReply{Pid: pid})
	}
	// Forward the client's signals; if it disconnects while the command
	// runs, kill the group. Once the command has exited, what it left in
	// the background (a job of its shell, a daemon) runs on, as after an
	// exec into a container.
	var exited atomic.Bool
	go func() {
		b := make([]byte, 256)
		for {
			n, err := c.Read(b)
			if err != nil || n == 0 {
				if !exited.Load() {
					_ = linux.Kill(-pid, syscall.SIGKILL)
				}
				return
			}
			if exited.Load() {
				continue // the command is over: what it left runs on untouched
			}
			var s execSignal
			if json.Unmarshal(b[:n], &s) == nil && s.Signal > 0 {
				_ = linux.Kill(-pid, syscall.Signal(s.Signal))
			}
		}
	}()
	in.reap() // in case SIGCHLD fired before registration
	ws := <-done
	exited.Store(true)
	r := execReply{Exited: true, Code: ws.ExitStatus()}
	if ws.Signaled() {
		r.Signal = int(ws.Signal())
	}
	sendReply(c, r)
}

func sendReply(c *net.UnixConn, r execReply) {
	b, _ := json.Marshal(r)
	_, _ = c.Write(b)
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// execDir is where a command runs in the node: the caller's directory
// when the node sees it (the host's file system, read-only), else the
// node's root, as a container runtime runs an exec in the container's
// working directory. The node's /tmp, /var/tmp and /run are its own: a
// caller working there would otherwise get "command not found".
func execDir(dir string) string {
	if dir == "" || isDir(dir) {
		return dir
	}
	return "/"
}
