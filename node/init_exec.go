package node

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
)

// handle serves one exec request on c.
func (in *initProc) handle(c *net.UnixConn) {
	defer c.Close()
	buf := make([]byte, maxMsg)
	n, files, err := linux.RecvWithFds(c, buf)
	defer closeAll(files)
	if err != nil {
		in.log.Error("exec request", "err", err)
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
	done := make(chan linux.WaitStatus, 1)
	in.mu.Lock()
	pid, err := in.launcher.Launch(&Process{Argv: req.Argv, Env: req.Env, Dir: req.Dir, Files: files})
	if err == nil {
		in.children[pid] = done
	}
	in.mu.Unlock()
	closeAll(files) // the child has its copies
	files = nil
	if err != nil {
		sendReply(c, execReply{Error: err.Error()})
		return
	}
	in.log.Info("launched", "pid", pid, "argv", req.Argv)
	sendReply(c, execReply{Pid: pid})
	// Forward the client's signals; if it disconnects, kill the group.
	go func() {
		b := make([]byte, 256)
		for {
			n, err := c.Read(b)
			if err != nil || n == 0 {
				_ = linux.Kill(-pid, syscall.SIGKILL)
				return
			}
			var s execSignal
			if json.Unmarshal(b[:n], &s) == nil && s.Signal > 0 {
				_ = linux.Kill(-pid, syscall.Signal(s.Signal))
			}
		}
	}()
	in.reap() // in case SIGCHLD fired before registration
	ws := <-done
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
