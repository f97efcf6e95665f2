package node

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/vmux/vmux/diecast/diskmodel"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/reexec"
)

// Config describes one node sandbox.
type Config struct {
	Experiment string // experiment name (cgroup path component)
	Name       string // node name (cgroup path component, default hostname)
	Hostname   string // default Name
	Limits     Limits
	HostsFile  string // bind-mounted over /etc/hosts inside the node if set
	Socket     string // path of the exec socket init listens on
	Launcher   string // registered launcher name; "" is plain exec
	// Supervisor is a connection to the experiment's time-dilation
	// supervisor (one end of a SOCK_SEQPACKET pair) that init uses to have
	// every process it launches adopted (SupervisedLauncher).
	Supervisor *os.File
	// Root is a directory to use as the node's root file system
	// (read-only); "" the host's (read-only too). See docs/security.md.
	Root string
	// Writable are host directories bound read-write at the same path in
	// the node (everything else is read-only; /tmp, /var/tmp, /run and
	// /dev/shm are private memory).
	Writable []string
	// Privileged turns the sandbox off (every capability, the host's file
	// systems writable); only the namespaces stay.
	Privileged bool
	// DiskModel, if set, is the disk latency model (package diskmodel):
	// each Writable directory is covered, in the node only, by a file
	// system whose reads, writes and fsyncs last, in the node's time, the
	// host disk's service time, so that a node dilated by k sees the
	// host's disk latency; its rates (the node's disk rates in its own
	// time) are applied by the model instead of blkio. nil: the host's
	// disk as is.
	DiskModel *diskmodel.Model
	// DiskClock, with DiskModel, is a read-only descriptor of the clock
	// page the node's time comes from (the experiment's): the model
	// follows its pauses and changes of k. Without it the node's time is
	// real time slowed by DiskModel.Factor.
	DiskClock *os.File

	// Exe is the binary re-executed as the node's init (reexec role
	// InitRole); default this one. It must call reexec.Init first.
	Exe string
	// Log receives init's own output (nil discards it).
	Log io.Writer
}

// CgroupLimits are the limits a node's cgroups get: l, less the disk
// rates when the disk model applies them instead.
func CgroupLimits(l Limits, diskModel bool) Limits {
	if diskModel {
		l.ReadBps, l.WriteBps, l.ReadIOPS, l.WriteIOPS = 0, 0, 0, 0
	}
	return l
}

// InitRole is the reexec role of a node's init.
const InitRole = "node-init"

func init() { reexec.Register(InitRole, func([]string) int { return InitMain() }) }

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// ValidName reports whether s is usable as a node or experiment name (a
// cgroup path component and a host name).
func ValidName(s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("%w: name %q: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit", ErrBadConfig, s)
	}
	return nil
}

// Node is a running node sandbox.
type Node struct {
	cfg    Config
	cmd    *exec.Cmd
	cgroup Cgroup
	start  uint64
	netns  uint64
	done   chan struct{}
	// disk are the cgroup directories of the node's disk model servers
	// (diskmodel_linux.go), removed with the node's.
	disk []string
}

// Start creates the node's cgroup, starts its init in new net, pid, mount,
// uts and ipc namespaces, moves it into the cgroup and waits until init
// serves exec requests. On error nothing is left behind.
func Start(cfg Config) (n *Node, err error) {
	if err := ValidName(cfg.Experiment); err != nil {
		return nil, err
	}
	if err := ValidName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.Name
	}
	if cfg.Socket == "" {
		return nil, fmt.Errorf("%w: node %s: no exec socket path", ErrBadConfig, cfg.Name)
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	if cfg.DiskModel != nil {
		if err := cfg.DiskModel.Validate(); err != nil {
			return nil, fmt.Errorf("%w: node %s: %v", ErrBadConfig, cfg.Name, err)
		}
		if cfg.Privileged {
			return nil, fmt.Errorf("%w: node %s: the disk model covers a sandbox's writable directories; a privileged node has none", ErrBadConfig, cfg.Name)
		}
	}
	cg, err := NewCgroup(cfg.Experiment, cfg.Name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = cg.Destroy()
		}
	}()
	if err := cg.Apply(CgroupLimits(cfg.Limits, cfg.DiskModel != nil)); err != nil {
		return nil, err
	}
	icfg := initConfig{
		Experiment: cfg.Experiment, Node: cfg.Name, Hostname: cfg.Hostname,
		HostsFile: cfg.HostsFile, Socket: cfg.Socket, Launcher: cfg.Launcher,
		CPU: cfg.Limits.CPU, Supervised: cfg.Supervisor != nil, Memory: cfg.Limits.Memory,
		Root: cfg.Root, Writable: cfg.Writable, Privileged: cfg.Privileged, Cgroups: cg.Paths(),
		DiskModel: cfg.DiskModel,
	}
	if cfg.DiskModel != nil && cfg.DiskClock != nil {
		// after the supervisor connection, if any
		icfg.ClockFd = supervisorFd
		if cfg.Supervisor != nil {
			icfg.ClockFd++
		}
	}
	ic, _ := json.Marshal(icfg)
	sock, err := listenExec(cfg.Socket)
	if err != nil {
		return nil, err
	}
	defer sock.Close() // init has its copy
	defer func() {
		if err != nil {
			_ = os.Remove(cfg.Socket)
		}
	}()
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create ready pipe: %w", err)
	}
	defer rd.Close()
	goRd, goWr, err := os.Pipe()
	if err != nil {
		wr.Close()
		return nil, fmt.Errorf("create start pipe: %w", err)
	}
	defer goWr.Close()
	cmd := reexec.Command(cfg.Exe, InitRole, cfg.Name)
	cmd.Env = append(cmd.Env, InitEnv+"="+string(ic))
	cmd.ExtraFiles = []*os.File{wr, sock, goRd} // readyFd, listenFd, goFd
	if cfg.Supervisor != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, cfg.Supervisor) // supervisorFd
	}
	if icfg.ClockFd != 0 {
		cmd.ExtraFiles = append(cmd.ExtraFiles, cfg.DiskClock) // icfg.ClockFd
	}
	cmd.Stdout, cmd.Stderr = cfg.Log, cfg.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: linux.NodeNSFlags, Setsid: true}
	// born in the node's cgroup: a Go program's start-up memory (~1.2 MiB)
	// allocated in its parent's would stay charged there (1,000 inits
	// filled the experiment daemon's 1 GiB), and Add below is then a no-op
	err = cg.Spawn(cmd.SysProcAttr, cmd.Start)
	wr.Close()
	goRd.Close()
	if err != nil {
		return nil, fmt.Errorf("start node %s init: %w", cfg.Name, err)
	}
	done := make(chan struct{})
	n = &Node{cfg: cfg, cmd: cmd, cgroup: cg, done: done}
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() {
		if err != nil {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if err := cg.Add(cmd.Process.Pid); err != nil {
		return nil, err
	}
	// Init serves nothing before it is in the cgroup: what it launches
	// inherits the cgroup, and its cgroup namespace is rooted there.
	// (If init has already failed, the write fails and its report says why.)
	_, _ = goWr.Write([]byte{1})
	if err := waitReady(rd, 10*time.Second); err != nil {
		return nil, fmt.Errorf("start node %s: %w", cfg.Name, err)
	}
	if cfg.DiskModel != nil {
		n.disk, err = moveDiskServers(cfg, cg)
		if err != nil {
			_ = removeCgroupDirs(n.disk, time.Second)
			return nil, fmt.Errorf("start node %s: %w", cfg.Name, err)
		}
	}
	if n.start, err = ProcStartTime(cmd.Process.Pid); err != nil {
		return nil, err
	}
	if n.netns, err = linux.NsInode(cmd.Process.Pid, "net"); err != nil {
		return nil, err
	}
	return n, nil
}

// waitReady reads init's one-line report: "ok" or the reason it failed.
func waitReady(rd *os.File, timeout time.Duration) error {
	_ = rd.SetReadDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(rd).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case line == "ok":
		return nil
	case line != "":
		return fmt.Errorf("%w: %s", ErrInitFailed, line)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: not ready after %v", ErrInitFailed, timeout)
	default:
		return fmt.Errorf("%w: exited before reporting ready (see its log)", ErrInitFailed)
	}
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Pid is the host pid of the node's init.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// NetnsPath is a path that opens the node's network namespace.
func (n *Node) NetnsPath() string { return linux.NetnsPath(n.Pid()) }

// Cgroup is the node's cgroup.
func (n *Node) Cgroup() Cgroup { return n.cgroup }

// Done is closed when the node's init has exited.
func (n *Node) Done() <-chan struct{} { return n.done }

// State is what teardown needs to find a node again from disk.
type State struct {
	Name       string   `json:"name"`
	Pid        int      `json:"pid"`
	StartTime  uint64   `json:"start_time"` // /proc/PID/stat field 22: guards against pid reuse
	NetnsInode uint64   `json:"netns_inode"`
	Cgroups    []string `json:"cgroups"`
	Socket     string   `json:"socket"`
}

// State returns the node's on-disk record.
func (n *Node) State() State {
	return State{Name: n.cfg.Name, Pid: n.Pid(), StartTime: n.start, NetnsInode: n.netns,
		Cgroups: append(n.cgroup.Paths(), n.disk...), Socket: n.cfg.Socket}
}

// Stop asks init to stop (SIGTERM: it forwards it to its processes), kills
// it after grace, then removes the cgroup and the socket.
func (n *Node) Stop(grace time.Duration) error {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(grace):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	err := errors.Join(n.cgroup.Destroy(), removeCgroupDirs(n.disk, 5*time.Second))
	_ = os.Remove(n.cfg.Socket)
	return err
}
