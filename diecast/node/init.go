package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/vmux/vmux/diecast/diskmodel"
	"github.com/vmux/vmux/internal/linux"
)

// InitEnv carries the JSON initConfig from Start to the re-executed init.
const InitEnv = "VMUX_NODE_INIT"

// initConfig is what Start hands to the node's init.
type initConfig struct {
	Experiment string  `json:"experiment"`
	Node       string  `json:"node"`
	Hostname   string  `json:"hostname"`
	HostsFile  string  `json:"hosts_file,omitempty"`
	Socket     string  `json:"socket"`
	Launcher   string  `json:"launcher,omitempty"`
	Supervised bool    `json:"supervised,omitempty"` // supervisorFd is the supervisor connection
	CPU        float64 `json:"cpu,omitempty"`
	// The sandbox (sandbox_linux.go): Memory bounds its scratch tmpfs,
	// Cgroups are the node's cgroup directories, shown in its /sys.
	Memory     int64    `json:"memory,omitempty"`
	Root       string   `json:"root,omitempty"`
	Writable   []string `json:"writable,omitempty"`
	Privileged bool     `json:"privileged,omitempty"`
	Cgroups    []string `json:"cgroups,omitempty"`
	// DiskModel is the disk latency model over Writable (nil: none);
	// ClockFd, if not 0, the descriptor of its clock page (Config.DiskClock).
	DiskModel *diskmodel.Model `json:"disk_model,omitempty"`
	ClockFd   int              `json:"clock_fd,omitempty"`
}

// oomInit and oomChild are the extreme oom_score_adj values: never
// chosen, always chosen first.
const (
	oomInit  = -1000
	oomChild = 1000
)

// readyFd is the pipe on which init reports "ok" or why it failed;
// supervisorFd, when Config.Supervisor is set, its supervisor connection
// (after the exec socket, listenFd, and the start pipe, goFd).
const (
	readyFd      = 3
	supervisorFd = goFd + 1
)

// stopGrace is how long init waits for its processes after forwarding a
// terminating signal before it exits (and the kernel kills the rest of the
// pid namespace).
const stopGrace = 2 * time.Second

// InitMain is the body of a node's PID 1 (reexec role InitRole). It sets up the mount and uts namespaces, serves exec
// requests, reaps every zombie of the pid namespace and forwards signals. It
// returns the exit status.
func InitMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ready := os.NewFile(readyFd, "ready")
	in, err := setupInit()
	if err != nil {
		log.Error("node init", "err", err)
		if ready != nil {
			fmt.Fprintf(ready, "%v\n", err)
		}
		return 1
	}
	in.log = log.With("node", in.cfg.Node)
	fmt.Fprintln(ready, "ok")
	ready.Close()
	return in.run()
}

type initProc struct {
	cfg      initConfig
	log      *slog.Logger
	ln       *net.UnixListener
	launcher Launcher
	sandbox  *sandbox
	oom      oomAdj

	// mu guards children; held across launch and registration so the
	// reaper never sees a pid before its waiter exists.
	mu       sync.Mutex
	children map[int]chan linux.WaitStatus

	handlers sync.WaitGroup // exec connections being served
}

// waitHandlers waits up to timeout for every exec connection to finish.
func (in *initProc) waitHandlers(timeout time.Duration) {
	done := make(chan struct{})
	go func() { in.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

func setupInit() (*initProc, error) {
	var cfg initConfig
	if err := json.Unmarshal([]byte(os.Getenv(InitEnv)), &cfg); err != nil {
		return nil, fmt.Errorf("%w: decode %s: %v", ErrNotInit, InitEnv, err)
	}
	os.Unsetenv(InitEnv)
	if os.Getpid() != 1 {
		return nil, fmt.Errorf("%w: init runs as pid %d, not 1 of a new pid namespace", ErrInitFailed, os.Getpid())
	}
	// Undo the priority of whoever started us (the experiment daemon runs
	// at a raised one); init leads its own process group.
	if err := linux.SetGroupNice(0); err != nil {
		return nil, fmt.Errorf("reset nice: %w", err)
	}
	adj, err := oomAdjustments()
	if err != nil {
		return nil, err
	}
	if err := linux.MakeMountsPrivate(); err != nil {
		return nil, fmt.Errorf("make mounts private: %w", err)
	}
	if err := linux.Sethostname(cfg.Hostname); err != nil {
		return nil, fmt.Errorf("set hostname: %w", err)
	}
	sb, err := newSandbox(cfg)
	if err != nil {
		return nil, err
	}
	disks, err := setupFS(cfg)
	if err != nil {
		return nil, fmt.Errorf("set up node file systems: %w", err)
	}
	if err := startDiskModel(sb, disks, cfg); err != nil {
		return nil, err
	}
	set := InitSettings{Node: cfg.Node, CPU: cfg.CPU}
	if cfg.Supervised {
		linux.SetCloexec(supervisorFd) // what init launches must not inherit it
		c, err := net.FileConn(os.NewFile(supervisorFd, "supervisor"))
		if err != nil {
			return nil, fmt.Errorf("supervisor connection: %w", err)
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return nil, fmt.Errorf("supervisor connection: %w: fd %d is not a unix socket", ErrBadConfig, supervisorFd)
		}
		set.Supervisor = uc
	}
	l, err := newLauncher(cfg.Launcher, set)
	if err != nil {
		return nil, err
	}
	ln, err := inheritListener()
	if err != nil {
		return nil, err
	}
	if err := awaitStart(); err != nil {
		ln.Close()
		return nil, err
	}
	return &initProc{cfg: cfg, ln: ln, launcher: l, sandbox: sb, oom: adj, children: map[int]chan linux.WaitStatus{}}, nil
}

// oomAdj are the OOM-killer biases of init and of what it launches.
type oomAdj struct{ init, child int }

// oomAdjustments makes init the OOM killer's last choice in its node: the
// workload may exhaust the memory limit, and init's death would end the
// node. With CAP_SYS_RESOURCE init takes -1000 (never chosen) and children
// the host's value; without it (some sandboxes drop that capability) init
// keeps its value and children get 1000 (always chosen first).
func oomAdjustments() (oomAdj, error) {
	orig, err := oomScoreAdj()
	if err != nil {
		return oomAdj{}, err
	}
	if setOOMScoreAdj(oomInit) == nil {
		return oomAdj{init: oomInit, child: orig}, nil
	}
	return oomAdj{init: orig, child: oomChild}, nil
}

func (in *initProc) run() int {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
		syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go in.serve()
	for s := range sigs {
		sig := s.(syscall.Signal)
		if sig == syscall.SIGCHLD {
			in.reap()
			continue
		}
		in.forward(sig)
		if sig == syscall.SIGTERM || sig == syscall.SIGINT {
			in.log.Info("stopping", "signal", sig)
			in.ln.Close()
			in.drain(stopGrace)
			in.waitHandlers(500 * time.Millisecond) // let exit statuses reach callers
			return 0
		}
	}
	return 0
}

// reap collects every exited child, ours or orphans of the namespace.
func (in *initProc) reap() {
	for {
		pid, ws, err := linux.ReapAny()
		if err != nil || pid <= 0 {
			return
		}
		in.mu.Lock()
		ch, ok := in.children[pid]
		delete(in.children, pid)
		in.mu.Unlock()
		if ok {
			ch <- ws
		}
	}
}

// forward sends sig to the process group of every launched process.
func (in *initProc) forward(sig syscall.Signal) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for pid := range in.children {
		_ = linux.Kill(-pid, sig)
	}
}

// drain reaps until the launched processes are gone or grace runs out.
func (in *initProc) drain(grace time.Duration) {
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		in.reap()
		in.mu.Lock()
		n := len(in.children)
		in.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (in *initProc) serve() {
	for {
		c, err := in.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				in.log.Error("accept", "err", err)
			}
			return
		}
		in.handlers.Add(1)
		go func() {
			defer in.handlers.Done()
			in.handle(c)
		}()
	}
}
