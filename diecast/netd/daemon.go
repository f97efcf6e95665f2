package netd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/vmux/vmux/diecast/diskmodel"
	"github.com/vmux/vmux/diecast/netem"
	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/diecast/topology"
	"github.com/vmux/vmux/dilate"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/reexec"
	"github.com/vmux/vmux/rt/vclock"
)

// DaemonRole is the reexec role of an experiment daemon (argument: the
// experiment's name).
const DaemonRole = "net-daemon"

func init() {
	reexec.Register(DaemonRole, func(args []string) int {
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "vmux net daemon: want one experiment name")
			return 2
		}
		return DaemonMain(args[0])
	})
}

// daemonNice is the daemon's nice value (the daemon leads its own session
// and process group, so this reaches none of the node workloads).
const daemonNice = -10

// readyFd is the pipe on which the daemon reports "ok" or its error to up.
const readyFd = 3

// DaemonMain is the experiment daemon: it brings up the experiment whose
// spec up copied to /run/vmux/<name>/spec.yaml, reports on fd 3, forwards
// packets until SIGTERM or SIGINT, then tears everything down. It returns
// the exit status.
func DaemonMain(name string) int {
	linux.SetCloexec(readyFd) // node inits must not inherit it
	launcher := ""
	if os.Getenv(dilateEnv) == "1" {
		launcher = node.SupervisedLauncherName
	}
	os.Unsetenv(dilateEnv)
	lead, _ := time.ParseDuration(os.Getenv(leadEnv))
	os.Unsetenv(leadEnv)
	noFreeze := os.Getenv(noFreezeEnv) == "1"
	os.Unsetenv(noFreezeEnv)
	writable := takeWritable()
	ready := os.NewFile(readyFd, "ready")
	logf, err := openLog(name)
	if err != nil {
		fmt.Fprintf(ready, "open log: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(logf, nil)).With("experiment", name)
	cg, err := enterDaemonCgroup(name)
	if err != nil {
		log.Error("bring-up failed", "err", err)
		fmt.Fprintf(ready, "%v\n", err)
		return 1
	}
	leave := func() { // before teardown, which empties vmux/<name>/*
		if err := cg.Leave(); err != nil {
			log.Warn("leave daemon cgroup", "err", err)
		}
	}
	// The emulator is the experiment's network hardware: host load must not
	// starve it. Node inits reset their own nice to 0 (node.InitMain).
	if err := linux.SetGroupNice(daemonNice); err != nil {
		log.Warn("raise daemon priority", "err", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	d, err := bringUp(name, launcher, lead, writable, noFreeze, logf, log)
	if err != nil {
		log.Error("bring-up failed", "err", err)
		leave()
		if d != nil {
			d.teardown() // before reporting: up then finds nothing left
		}
		fmt.Fprintf(ready, "%v\n", err)
		ready.Close()
		return 1
	}
	fmt.Fprintln(ready, "ok")
	ready.Close()
	log.Info("up", "nodes", len(d.nodes))
	go d.writeStats(StatsEvery)
	s := <-sigs
	log.Info("tearing down", "signal", s)
	leave()
	d.teardown()
	log.Info("down")
	return 0
}

type daemon struct {
	name  string
	log   *slog.Logger
	net   *topology.Network
	st    *State
	nodes []*node.Node
	emu   *netem.Emulator
	dil   *dilation // a dilated experiment's clock and supervisor; nil otherwise
	tcp   *tcpPause // a dilated experiment's TCP freeze across pauses; nil otherwise
	// domains are the nodes' CPU shares for the supervisor, by node index.
	domains []*dilate.Domain
	done    chan struct{}
	wg      sync.WaitGroup
	// closing counts TUN fds still being closed (see asyncClose).
	closing sync.WaitGroup
	// writable are UpOptions.Writable: host directories every node may write.
	writable []string
}

// asyncClose closes its TUN in the background. Closing a TUN fd
// unregisters the interface synchronously, ~20 ms each under the rtnl lock
// and RCU grace periods; the emulator closes its endpoints one by one, so
// 64 nodes took over a second. In parallel the kernel overlaps the waits.
type asyncClose struct {
	*netem.TUN
	wg   *sync.WaitGroup
	once sync.Once
}

func (a *asyncClose) Close() error {
	a.once.Do(func() {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.TUN.Close()
		}()
	})
	return nil
}

// startWorkers bounds concurrent node starts: each is a fork/exec plus a
// few cgroup and netlink writes; more than a few in parallel only contend.
const startWorkers = 8

func bringUp(name, launcher string, lead time.Duration, writable []string, noFreeze bool, logf *os.File, log *slog.Logger) (*daemon, error) {
	nw, err := topology.Load(specPath(name))
	if err != nil {
		return nil, err
	}
	self, err := node.ProcStartTime(os.Getpid())
	if err != nil {
		return nil, err
	}
	d := &daemon{name: name, log: log, net: nw, writable: writable, done: make(chan struct{})}
	d.st = &State{Name: name, TDF: nw.TDF.Float64(), Factor: nw.TDF.String(), Launcher: launcher, Lead: lead, Writable: writable, Subnet: nw.Subnet.String(), Created: time.Now().UTC(),
		Daemon: Proc{Pid: os.Getpid(), StartTime: self}, Switches: nw.Switches, LogFile: logPath(name), Interface: TUNName,
		PidNS: ownPidNS()}
	if err := d.st.save(); err != nil {
		return nil, err
	}
	if launcher == node.SupervisedLauncherName {
		if d.dil, err = startDilation(name, nw.TDF, log); err != nil {
			return d, err
		}
	}
	// The hosts file is the one file of the run directory others may read:
	// every node process, whatever its user, resolves names through it.
	if err := os.WriteFile(hostsPath(name), hostsFile(nw), 0o644); err != nil {
		return d, fmt.Errorf("write hosts file: %w", err)
	}
	// Exec sockets run commands as root in a node: root-only directory
	// whatever the umask (node.Start refuses any other).
	if err := os.MkdirAll(filepath.Dir(sockPath(name, "x")), 0o700); err != nil {
		return d, fmt.Errorf("create socket dir: %w", err)
	}
	if err := os.Chmod(filepath.Dir(sockPath(name, "x")), 0o700); err != nil {
		return d, fmt.Errorf("create socket dir: %w", err)
	}
	d.nodes = make([]*node.Node, len(nw.Nodes))
	d.domains = make([]*dilate.Domain, len(nw.Nodes))
	eps := make([]netem.Endpoint, len(nw.Nodes))
	var mu sync.Mutex // guards d.st.Nodes and its saves
	var lastSave time.Time
	errs := make([]error, len(nw.Nodes))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(startWorkers, len(nw.Nodes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				nd := nw.Nodes[i]
				n, tun, err := d.startNode(nd, logf)
				if err != nil {
					errs[i] = fmt.Errorf("node %s: %w", nd.Name, err)
					continue
				}
				d.nodes[i], eps[i] = n, &asyncClose{TUN: tun, wg: &d.closing}
				mu.Lock()
				d.st.Nodes = append(d.st.Nodes, nodeState(nw, nd, n))
				// Saved now and then, not at every node: the state grows
				// with the nodes, so saving it each time made bring-up
				// quadratic (1,000 nodes: ~400 KB written 1,000 times).
				// A crash in between loses nothing: down also removes
				// whatever is in the experiment's cgroups.
				err = nil
				if time.Since(lastSave) > saveEvery || len(d.st.Nodes) == len(nw.Nodes) {
					err = d.st.save()
					lastSave = time.Now()
				}
				mu.Unlock()
				if err != nil {
					errs[i] = err
				}
			}
		}()
	}
	for i := range nw.Nodes {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, ep := range eps {
			if ep != nil {
				ep.Close()
			}
		}
		return d, err
	}
	byName := map[string]netem.Endpoint{}
	for i, nd := range nw.Nodes {
		byName[nd.Name] = eps[i]
	}
	opts := netem.Options{Logger: log, Lead: lead}
	if d.dil != nil {
		opts.Clock = d.dil.view // virtual time: pause and k reach packets in flight
	}
	d.emu, err = netem.New(nw, byName, opts)
	if err != nil {
		for _, ep := range eps {
			ep.Close()
		}
		return d, err
	}
	if d.dil != nil {
		d.tcp = newTCPPause(d, noFreeze)
		d.st.TCPFreeze = d.tcp.state()
		before := d.tcp.before
		follow := func(p vclock.Params) {
			d.followClock(p)
			d.tcp.after(p)
		}
		d.dil.beforeChange.Store(&before)
		d.dil.onChange.Store(&follow)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.emu.Run(); err != nil {
			log.Error("emulator stopped", "err", err)
		}
	}()
	for _, n := range d.nodes {
		go d.watch(n)
	}
	d.sortNodes()
	d.st.Ready = true
	return d, d.st.save()
}

func (d *daemon) startNode(nd *topology.Node, logf *os.File) (*node.Node, *netem.TUN, error) {
	lim, err := Limits(nd, d.net.TDF)
	if err != nil {
		return nil, nil, err
	}
	cfg := node.Config{
		Experiment: d.name, Name: nd.Name, Limits: lim, HostsFile: hostsPath(d.name),
		Socket: sockPath(d.name, nd.Name), Log: logf, Launcher: d.st.Launcher,
		Root: nd.Root, Writable: append(append([]string(nil), nd.Writable...), d.writable...), Privileged: nd.Privileged,
	}
	if d.dil != nil && nd.Disk.LatencyModel {
		// the disk latency model in the experiment's time, at the
		// spec's rates (node.Config.DiskModel)
		cfg.DiskModel = &diskmodel.Model{Factor: d.net.TDF.Float64(),
			ReadIOPS: int64(nd.Disk.ReadIOPS), WriteIOPS: int64(nd.Disk.WriteIOPS), ReadBps: int64(nd.Disk.Read), WriteBps: int64(nd.Disk.Write)}
		if cfg.DiskClock, err = d.dil.clock.ReadOnly(); err != nil {
			return nil, nil, err
		}
		defer cfg.DiskClock.Close() // init's copy goes to the servers
	}
	if d.dil != nil {
		domain, err := dilate.NewDomain(shareOf(lim.CPU))
		if err != nil {
			return nil, nil, err
		}
		d.domains[nd.Index] = domain
		if cfg.Supervisor, err = d.dil.nodeConn(nd.Name, domain); err != nil {
			return nil, nil, err
		}
	}
	n, err := node.Start(cfg)
	if cfg.Supervisor != nil {
		cfg.Supervisor.Close() // init has its copy
	}
	if err != nil {
		return nil, nil, err
	}
	tun, err := attachNode(n.NetnsPath(), nd.Prefix(d.net))
	if err != nil {
		_ = n.Stop(time.Second)
		return nil, nil, err
	}
	return n, tun, nil
}

// followClock applies a change of the experiment's clock to what depends
// on its factor: every node's CPU quota and disk throttles (c/k, d/k: each
// node keeps perceiving the machine of the spec), the supervisor's share
// for its processes, and the emulator's sleeps (the links keep their
// virtual parameters, so their real ones follow k by themselves).
func (d *daemon) followClock(p vclock.Params) {
	for i, nd := range d.net.Nodes {
		n := d.nodes[i]
		if n == nil {
			continue
		}
		lim, err := Limits(nd, p.TDF)
		if err != nil {
			d.log.Warn("node limits at the new factor are out of range; keeping the old ones", "node", nd.Name, "tdf", p.TDF.String(), "err", err)
			continue
		}
		// the disk model's servers follow the clock themselves
		dm := d.dil != nil && nd.Disk.LatencyModel
		if err := n.Cgroup().Apply(node.CgroupLimits(lim, dm)); err != nil {
			d.log.Warn("applying node limits at the new factor", "node", nd.Name, "err", err)
		}
		if dm := d.domains[i]; dm != nil {
			_ = dm.SetShare(shareOf(lim.CPU))
		}
		for j := range d.st.Nodes {
			if d.st.Nodes[j].Name == nd.Name {
				d.st.Nodes[j].CPU = lim.CPU
			}
		}
	}
	if err := d.st.save(); err != nil {
		d.log.Warn("saving state", "err", err)
	}
	d.emu.ClockChanged()
}

// Limits turns a node's spec into real cgroup limits at TDF k: a node that
// should perceive c cores runs on c/k real cores (it sees k times more per
// second of its time), and disk rates are divided by k likewise; memory is
// not scaled.
func Limits(nd *topology.Node, tdf vclock.TDF) (node.Limits, error) {
	k := tdf.Float64()
	l := node.Limits{
		CPU: nd.CPU / k, Memory: int64(nd.Memory),
		ReadBps: int64(float64(nd.Disk.Read) / k), WriteBps: int64(float64(nd.Disk.Write) / k),
		ReadIOPS: int64(float64(nd.Disk.ReadIOPS) / k), WriteIOPS: int64(float64(nd.Disk.WriteIOPS) / k),
	}
	if err := l.Validate(); err != nil {
		return l, fmt.Errorf("node %s at tdf %g: %w", nd.Name, k, err)
	}
	return l, nil
}

func nodeState(nw *topology.Network, nd *topology.Node, n *node.Node) NodeState {
	lim, _ := Limits(nd, nw.TDF)
	return NodeState{State: n.State(), Address: nd.Prefix(nw).String(), Group: nd.Group, CPU: lim.CPU, Memory: lim.Memory}
}

// sortNodes puts the state's nodes in topology order (workers finish in
// any order).
func (d *daemon) sortNodes() {
	idx := map[string]int{}
	for i, nd := range d.net.Nodes {
		idx[nd.Name] = i
	}
	out := make([]NodeState, len(d.st.Nodes))
	for _, ns := range d.st.Nodes {
		out[idx[ns.Name]] = ns
	}
	d.st.Nodes = out
}

// saveEvery is how often bring-up saves the state as nodes come up.
const saveEvery = 250 * time.Millisecond

// hostsFile is the /etc/hosts every node sees: localhost and every node.
func hostsFile(nw *topology.Network) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, nd := range nw.Nodes {
		fmt.Fprintf(&b, "%s\t%s\n", nd.Addr, nd.Name)
	}
	return b.Bytes()
}

// watch logs a node whose init dies while the experiment runs (killed by
// hand or by the OOM killer): its address goes dark until vmux net down.
func (d *daemon) watch(n *node.Node) {
	select {
	case <-n.Done():
		select {
		case <-d.done:
		default:
			d.log.Warn("node init exited; the node is gone until the experiment is brought up again", "node", n.Name())
		}
	case <-d.done:
	}
}

// teardown stops the emulator and every node, then removes the run dir.
func (d *daemon) teardown() {
	close(d.done)
	if d.tcp != nil {
		d.tcp.close() // first: a process waiting for a held socket cannot be killed
	}
	if d.emu != nil {
		d.emu.Close()
	}
	d.wg.Wait()
	var wg sync.WaitGroup
	for _, n := range d.nodes {
		if n == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Stop(time.Second); err != nil {
				d.log.Warn("stop node", "node", n.Name(), "err", err)
			}
		}()
	}
	wg.Wait()
	if d.dil != nil {
		d.dil.close() // what is left traced (nothing, once every init is gone)
	}
	d.closing.Wait()
	removeRemains(d.name)
}

// StatsEvery is how often the daemon publishes the emulator's counters
// (stats.json): vmux cast's keep-up monitor reads them during a run.
const StatsEvery = time.Second

// writeStats publishes the emulator's counters for vmux net status.
func (d *daemon) writeStats(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if d.emu != nil {
			if b, err := json.Marshal(d.emu.Stats()); err == nil {
				_ = writePrivate(statsPath(d.name), b)
			}
		}
		select {
		case <-d.done:
			return
		case <-t.C:
		}
	}
}
