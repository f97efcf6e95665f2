package netd

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/dilate"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

// dilation is a dilated experiment's time: ONE clock (the daemon owns it
// and serves `vmux clock` for it under the experiment's name), ONE
// supervisor tracing every process of every node (dilate.Serve, its trace
// thread in this process), and the adoption service each node's init asks
// over its own connection (a SOCK_SEQPACKET pair; node.SupervisedLauncher)
// to have a process adopted before it runs. The link emulator reads the
// same clock (netem.Options.Clock), so a pause or a change of k reaches
// every node, timer and packet in flight at once.
type dilation struct {
	clock *clock.Clock
	view  *clock.View // the emulator's reader
	ctl   *clock.Server
	sup   *dilate.Supervisor
	log   *slog.Logger
	// onChange runs after every change `vmux clock` makes (the daemon's
	// followClock, once everything is up); beforeChange before it (the
	// TCP freeze of a pause).
	onChange     atomic.Pointer[func(vclock.Params)]
	beforeChange atomic.Pointer[func(string, vclock.Params)]

	mu    sync.Mutex // guards conns
	conns []*net.UnixConn
	wg    sync.WaitGroup
}

// startDilation creates the experiment's clock at k and its supervisor.
func startDilation(name string, k vclock.TDF, log *slog.Logger) (*dilation, error) {
	clk, err := clock.New(name, vclock.Config{TDF: k})
	if err != nil {
		return nil, err
	}
	x := &dilation{clock: clk, log: log}
	if x.view, err = clk.View(); err != nil {
		x.close()
		return nil, err
	}
	notify := func(p vclock.Params) {
		if f := x.onChange.Load(); f != nil {
			(*f)(p)
		}
	}
	before := func(op string, cur vclock.Params) {
		if f := x.beforeChange.Load(); f != nil {
			(*f)(op, cur)
		}
	}
	if x.ctl, err = clock.Serve(clk, clock.ServeOptions{Name: name, Kind: clock.KindExperiment, Logger: log, OnChange: notify, BeforeChange: before}); err != nil {
		x.close()
		if errors.Is(err, clock.ErrNameInUse) {
			return nil, fmt.Errorf("experiment clock: %w (a `vmux run --name %s` is running: stop it or rename the experiment)", err, name)
		}
		return nil, err
	}
	if x.sup, err = dilate.Serve(dilate.Config{Clock: clk, Logger: log}); err != nil {
		x.close()
		return nil, err
	}
	return x, nil
}

// nodeConn returns init's end of a new adoption connection (the caller
// hands it to node.Start and closes its copy) and serves the other end:
// every process it adopts follows domain's CPU share.
func (x *dilation) nodeConn(nodeName string, domain *dilate.Domain) (*os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("node %s: adoption connection: %w", nodeName, err)
	}
	ours := os.NewFile(uintptr(fds[0]), "adopt-"+nodeName)
	theirs := os.NewFile(uintptr(fds[1]), "adopt-"+nodeName)
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, fmt.Errorf("node %s: adoption connection: %w", nodeName, err)
	}
	uc := c.(*net.UnixConn)
	x.mu.Lock()
	x.conns = append(x.conns, uc)
	x.mu.Unlock()
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		x.serve(nodeName, domain, uc)
	}()
	return theirs, nil
}

// serve answers one node init's adoption requests until it goes away.
func (x *dilation) serve(nodeName string, domain *dilate.Domain, c *net.UnixConn) {
	buf := make([]byte, node.MaxAdoptMsg)
	for {
		n, files, err := linux.RecvWithFds(c, buf)
		if err != nil || n == 0 {
			return // init exited, or teardown closed the connection
		}
		reply := node.AdoptReply{}
		if err := x.adopt(buf[:n], files, domain); err != nil {
			reply.Error = err.Error()
			x.log.Warn("adoption refused", "node", nodeName, "err", err)
		}
		for _, f := range files {
			f.Close()
		}
		b, _ := json.Marshal(reply)
		if _, err := c.Write(b); err != nil {
			return
		}
	}
}

func (x *dilation) adopt(msg []byte, files []*os.File, domain *dilate.Domain) error {
	var req node.AdoptRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		return fmt.Errorf("bad adoption request: %v", err)
	}
	if len(files) != 1 {
		return fmt.Errorf("bad adoption request: want one pidfd, got %d descriptors", len(files))
	}
	return x.sup.Adopt(files[0], domain)
}

// shareOf is the CPU share of a node whose real limit is cpu cores: its
// fraction of a core, or the clock's own (zero) without a limit below one.
func shareOf(cpu float64) vclock.Share {
	if cpu > 0 && cpu < 1 {
		if sh, err := vclock.ShareFromFloat(cpu); err == nil {
			return sh
		}
	}
	return vclock.Share{}
}

// close stops the supervisor (every dilated process dies), the adoption
// service and the clock.
func (x *dilation) close() {
	if x.sup != nil {
		x.sup.Close()
	}
	x.mu.Lock()
	for _, c := range x.conns {
		c.Close()
	}
	x.mu.Unlock()
	x.wg.Wait()
	if x.ctl != nil {
		x.ctl.Close()
	}
	if x.view != nil {
		x.view.Close()
	}
	if x.clock != nil {
		x.clock.Close()
	}
}
