//go:build linux

package cast

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/internal/linux"
)

// readyPoll is how often port and output conditions are checked (real
// time); a readiness command is run every readyCmdPoll of virtual time.
const (
	readyPoll    = 20 * time.Millisecond
	readyCmdPoll = 100 * time.Millisecond
)

// waitReady polls it's readiness condition until it holds (nil), the
// service exits, its timeout (virtual) passes or ctx ends.
func (w *workload) waitReady(ctx context.Context, it *Item, ns *netd.NodeState, outPath, errPath string, start time.Time, exited <-chan struct{}) error {
	r := it.Ready
	deadline := start.Add(w.realOf(r.Timeout))
	every := readyPoll
	if len(r.Argv) > 0 {
		every = w.realOf(readyCmdPoll)
	}
	for {
		ok, err := w.readyNow(it, ns, outPath, errPath)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%w: it exited before it was ready%s", ErrNotReady, tail(readOut(errPath)))
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(every):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: not ready after %v of virtual time (%s)%s", ErrNotReady, r.Timeout, describeReady(r), tail(readOut(errPath)))
		}
	}
}

func describeReady(r *Ready) string {
	switch {
	case r.Port > 0:
		return "port " + strconv.Itoa(r.Port) + " refused connections"
	case r.Output != nil:
		return fmt.Sprintf("no output line matched %q", r.Output)
	}
	return fmt.Sprintf("%q never succeeded", r.Argv)
}

func (w *workload) readyNow(it *Item, ns *netd.NodeState, outPath, errPath string) (bool, error) {
	r := it.Ready
	switch {
	case r.Port > 0:
		return portOpen(ns, r.Port), nil
	case r.Output != nil:
		for _, p := range []string{outPath, errPath} {
			sc := bufio.NewScanner(bytes.NewReader(readOut(p)))
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if r.Output.Match(sc.Bytes()) {
					return true, nil
				}
			}
		}
		return false, nil
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer null.Close()
	es, err := node.Exec(ns.Name, ns.Socket, node.ExecOptions{Argv: r.Argv, Env: w.env(it, 0, ns.Name, 0, "/"), Dir: "/",
		Stdin: null, Stdout: null, Stderr: null})
	if err != nil {
		return false, err
	}
	return es.Code == 0 && es.Signal == 0, nil
}

// portOpen dials the node's own address on port from inside its netns.
func portOpen(ns *netd.NodeState, port int) bool {
	p, err := netip.ParsePrefix(ns.Address)
	if err != nil {
		return false
	}
	addr := netip.AddrPortFrom(p.Addr(), uint16(port)).String()
	var c net.Conn
	err = linux.InNetns(linux.NetnsPath(ns.Pid), func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, 200*time.Millisecond)
		return err
	})
	if err != nil {
		return false
	}
	c.Close()
	return true
}
