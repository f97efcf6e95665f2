package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// The control socket (ctl.sock in the state directory, mode 0600) takes one
// JSON request per connection and answers with one JSON response. Only
// root and the engine's own user may talk to it (SO_PEERCRED); a request
// is at most maxRequest bytes and must arrive within ioTimeout.

const (
	maxRequest = 64 << 10
	ioTimeout  = 10 * time.Second
)

// Request is a control request.
type Request struct {
	Op     string `json:"op"` // "status", "attach", "detach", "stop"
	Pids   []int  `json:"pids,omitempty"`
	Domain string `json:"domain,omitempty"`
}

// Response answers a Request.
type Response struct {
	OK     bool     `json:"ok"`
	Error  string   `json:"error,omitempty"`
	Errors []string `json:"errors,omitempty"` // per PID, for attach and detach
	Status *Status  `json:"status,omitempty"`
}

// Serve answers control requests until ctx ends or a stop request comes
// (then it calls stop and returns). The socket is removed on return.
func Serve(ctx context.Context, e *Engine, stop func()) error {
	path := filepath.Join(e.cfg.Dir, sockFile)
	os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on the control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	defer os.Remove(path)
	go func() { <-ctx.Done(); l.Close() }()
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		if e.handle(c, stop) {
			l.Close()
			return nil
		}
	}
}

// handle answers one connection; true if it asked the engine to stop.
func (e *Engine) handle(c *net.UnixConn, stop func()) bool {
	defer c.Close()
	if !allowedPeer(c) {
		return false
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	var req Request
	if err := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req); err != nil {
		writeResp(c, Response{Error: "bad request: " + err.Error()})
		return false
	}
	resp := Response{OK: true}
	stopping := false
	switch req.Op {
	case "status":
		s := e.Status()
		resp.Status = &s
	case "attach", "detach":
		if len(req.Pids) > 1024 {
			resp = Response{Error: "too many PIDs in one request"}
			break
		}
		for _, pid := range req.Pids {
			var err error
			c.SetDeadline(time.Now().Add(ioTimeout))
			if req.Op == "attach" {
				err = e.Attach(pid, req.Domain)
			} else {
				err = e.Detach(pid)
			}
			if err != nil {
				resp.OK = false
				resp.Errors = append(resp.Errors, err.Error())
			}
		}
	case "stop":
		stopping = true
	default:
		resp = Response{Error: fmt.Sprintf("unknown op %q", req.Op)}
	}
	if stopping {
		// give everything back first, then answer: the caller learns
		// whether every page went home
		c.SetDeadline(time.Time{})
		err := e.Stop()
		if err != nil {
			resp = Response{Error: err.Error()}
		}
		c.SetDeadline(time.Now().Add(ioTimeout))
		writeResp(c, resp)
		stop()
		return true
	}
	writeResp(c, resp)
	return false
}

func writeResp(c net.Conn, r Response) {
	_ = json.NewEncoder(c).Encode(r)
}

// allowedPeer admits root and this process's own user.
func allowedPeer(c *net.UnixConn) bool {
	cr, err := linux.PeerCred(c)
	return err == nil && (cr.Uid == 0 || int(cr.Uid) == os.Geteuid())
}

// Call sends req to the engine over dir's control socket (DefaultDir when
// empty) and returns its answer. ErrNotRunning if no engine listens.
func Call(dir string, req Request, timeout time.Duration) (*Response, error) {
	if dir == "" {
		dir = DefaultDir
	}
	c, err := net.DialTimeout("unix", filepath.Join(dir, sockFile), 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNotRunning, err)
	}
	defer c.Close()
	if timeout > 0 {
		c.SetDeadline(time.Now().Add(timeout))
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("send to the live engine: %w", err)
	}
	var resp Response
	if err := json.NewDecoder(io.LimitReader(c, 64<<20)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("read the live engine's answer: %w", err)
	}
	return &resp, nil
}
