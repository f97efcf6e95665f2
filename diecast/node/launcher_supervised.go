package node

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vmux/vmux/dilate"
	"github.com/vmux/vmux/internal/linux"
)

// SupervisedLauncherName selects SupervisedLauncher.
const SupervisedLauncherName = "supervised"

// SupervisedLauncher dilates every program of a node on its experiment's
// one clock: it parks the program's launcher (dilate.Park), hands the
// launcher's pidfd to the experiment's supervisor over init's supervisor
// connection (AdoptRequest), and releases it once adopted, so the program
// runs traced and filtered from its first instruction, with the node's CPU
// share (the supervisor's to set); everything it starts, daemons included, stays so after the exec
// that started it returns.
type SupervisedLauncher struct {
	mu   sync.Mutex // one request on the connection at a time
	conn *net.UnixConn
}

// AdoptRequest is what a node's init asks the experiment's supervisor,
// with the launcher's pidfd as SCM_RIGHTS; AdoptReply the answer. (The
// connection says which node asks; the node's CPU share is the
// supervisor's to know, as it follows the experiment's factor.)
type AdoptRequest struct{}

// AdoptReply answers an AdoptRequest.
type AdoptReply struct {
	Error string `json:"error,omitempty"`
}

// MaxAdoptMsg bounds one message of the adoption protocol.
const MaxAdoptMsg = 4 << 10

// adoptTimeout bounds one adoption round trip.
const adoptTimeout = 30 * time.Second

func newSupervisedLauncher(s InitSettings) (Launcher, error) {
	if s.Supervisor == nil {
		return nil, fmt.Errorf("%w: launcher %s needs the experiment's supervisor connection", ErrBadConfig, SupervisedLauncherName)
	}
	return &SupervisedLauncher{conn: s.Supervisor}, nil
}

// Launch implements Launcher.
func (l *SupervisedLauncher) Launch(p *Process) (int, error) {
	if len(p.Argv) == 0 {
		return 0, fmt.Errorf("launch: %w: empty command", ErrBadConfig)
	}
	path, err := lookPath(p.Argv[0], p.Env)
	if err != nil {
		return 0, err
	}
	if path, err = dilate.Resolve(path); err != nil {
		return 0, err
	}
	if len(p.Files) != 3 {
		return 0, fmt.Errorf("launch: %w: want stdin, stdout and stderr", ErrBadConfig)
	}
	parked, err := dilate.Park(path, p.Argv, p.Env, p.Dir, [3]*os.File{p.Files[0], p.Files[1], p.Files[2]},
		&syscall.SysProcAttr{Setsid: true, Setctty: p.TTY, Ctty: 0})
	if err != nil {
		return 0, fmt.Errorf("launch %s: %w", path, err)
	}
	if err := l.adopt(parked.Pid); err != nil {
		parked.Abort()
		return 0, fmt.Errorf("launch %s: %w", path, err)
	}
	if err := parked.Release(); err != nil {
		return 0, fmt.Errorf("launch %s: %w", path, err)
	}
	return parked.Pid, nil
}

// adopt asks the supervisor to adopt pid and waits for the answer.
func (l *SupervisedLauncher) adopt(pid int) error {
	fd, err := linux.PidfdOpen(pid)
	if err != nil {
		return fmt.Errorf("adopting: %w", err)
	}
	pidfd := os.NewFile(uintptr(fd), "pidfd")
	defer pidfd.Close()
	req, _ := json.Marshal(AdoptRequest{})
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.conn.SetDeadline(time.Now().Add(adoptTimeout))
	defer l.conn.SetDeadline(time.Time{})
	if err := linux.SendWithFds(l.conn, req, pidfd); err != nil {
		return fmt.Errorf("adopting: asking the supervisor: %w", err)
	}
	buf := make([]byte, MaxAdoptMsg)
	n, err := l.conn.Read(buf)
	if err != nil {
		return fmt.Errorf("adopting: the supervisor did not answer: %w", err)
	}
	var r AdoptReply
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		return fmt.Errorf("adopting: %w: bad answer: %v", ErrInitFailed, err)
	}
	if r.Error != "" {
		return fmt.Errorf("adopting: the supervisor refused: %s", r.Error)
	}
	return nil
}
