package tcpfreeze

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// pair is the research note's set-up in miniature: two network
// namespaces (a: 10.250.0.1, b: 10.250.0.2), each with a TUN, and a
// forwarder in this process that delivers every packet after delay of
// its own virtual time. Pause stops that time: every packet in flight is
// held, as the emulator holds them in a paused experiment.
type pair struct {
	t      testing.TB
	ns     [2]string // netns paths
	tun    [2]*os.File
	delay  time.Duration
	closed atomic.Bool
	wg     sync.WaitGroup

	mu          sync.Mutex // guards the time base and the notifications
	pausedAt    time.Time  // zero while running
	pausedTotal time.Duration
	// seen[i]: delivered into node i since the last Watch(i).
	seen [2]chan struct{}
}

var addrs = [2]string{"10.250.0.1", "10.250.0.2"}

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func newPair(t testing.TB, delay time.Duration) *pair {
	t.Helper()
	p := &pair{t: t, delay: delay}
	for i := range 2 {
		name := fmt.Sprintf("tfz%d-%c", os.Getpid(), 'a'+i)
		run(t, "ip", "netns", "add", name)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		p.ns[i] = "/run/netns/" + name
		f, _, err := linux.OpenTUNPolledInNetns(p.ns[i], "tfz0")
		if err != nil {
			t.Fatal(err)
		}
		p.tun[i] = f
		run(t, "ip", "-n", name, "addr", "add", addrs[i]+"/32", "peer", addrs[1-i], "dev", "tfz0")
		run(t, "ip", "-n", name, "link", "set", "tfz0", "up")
		run(t, "ip", "-n", name, "link", "set", "lo", "up")
	}
	for i := range 2 {
		q := make(chan packet, 1<<16)
		p.wg.Add(2)
		go p.read(i, q)
		go p.write(1-i, q)
	}
	t.Cleanup(p.close)
	return p
}

type packet struct {
	b   []byte
	due time.Duration // virtual
}

// now is the forwarder's virtual time.
func (p *pair) now() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.vnow()
}

var epoch = time.Now()

func (p *pair) vnow() time.Duration {
	t := time.Now()
	if !p.pausedAt.IsZero() {
		t = p.pausedAt
	}
	return t.Sub(epoch) - p.pausedTotal
}

func (p *pair) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pausedAt.IsZero() {
		p.pausedAt = time.Now()
	}
}

func (p *pair) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.pausedAt.IsZero() {
		p.pausedTotal += time.Since(p.pausedAt)
		p.pausedAt = time.Time{}
	}
}

// watch returns a channel closed at the next delivery into node i.
func (p *pair) watch(i int) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[i] = make(chan struct{})
	return p.seen[i]
}

func (p *pair) read(i int, q chan<- packet) {
	defer p.wg.Done()
	defer close(q)
	buf := make([]byte, 65536)
	for {
		n, err := p.tun[i].Read(buf)
		if err != nil {
			return
		}
		if n < 20 || buf[0]>>4 != 4 {
			continue
		}
		q <- packet{append([]byte(nil), buf[:n]...), p.now() + p.delay}
	}
}

func (p *pair) write(i int, q <-chan packet) {
	defer p.wg.Done()
	for pk := range q {
		for !p.closed.Load() {
			if d := pk.due - p.now(); d > 0 {
				time.Sleep(min(d, 200*time.Microsecond))
				continue
			}
			break
		}
		p.tun[i].Write(pk.b)
		p.mu.Lock()
		if c := p.seen[i]; c != nil {
			close(c)
			p.seen[i] = nil
		}
		p.mu.Unlock()
	}
}

func (p *pair) close() {
	if p.closed.Swap(true) {
		return
	}
	for _, f := range p.tun {
		f.Close()
	}
	p.wg.Wait()
}

// target is node i as Freeze sees it, with this process's descriptors
// (and those of pids).
func (p *pair) target(i int, pids ...int) Target {
	return Target{Name: string(rune('a' + i)), Netns: p.ns[i], Pids: append([]int{os.Getpid()}, pids...)}
}

// listen listens on node b's address.
func (p *pair) listen() *net.TCPListener {
	p.t.Helper()
	var ln *net.TCPListener
	err := linux.InNetns(p.ns[1], func() error {
		var err error
		ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.ParseIP(addrs[1])})
		return err
	})
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects from node a to ln and returns both ends.
func (p *pair) dial(ln *net.TCPListener) (*net.TCPConn, *net.TCPConn) {
	p.t.Helper()
	var c *net.TCPConn
	err := linux.InNetns(p.ns[0], func() error {
		var err error
		c, err = net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
		return err
	})
	if err != nil {
		p.t.Fatal(err)
	}
	s, err := ln.AcceptTCP()
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// counters reads node i's TCP counters (its netns's /proc/net/snmp and
// netstat).
func (p *pair) counters(i int) map[string]int64 {
	p.t.Helper()
	out := map[string]int64{}
	err := linux.InNetns(p.ns[i], func() error {
		for _, name := range []string{"/proc/thread-self/net/snmp", "/proc/thread-self/net/netstat"} {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			sc := bufio.NewScanner(f)
			var hdr []string
			for sc.Scan() {
				fs := strings.Fields(sc.Text())
				if len(fs) < 2 {
					continue
				}
				if hdr == nil || hdr[0] != fs[0] {
					hdr = fs
					continue
				}
				for j := 1; j < len(fs) && j < len(hdr); j++ {
					v, _ := strconv.ParseInt(fs[j], 10, 64)
					out[strings.TrimSuffix(fs[0], ":")+":"+hdr[j]] = v
				}
				hdr = nil
			}
			f.Close()
		}
		return nil
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// retrans is the part of counters a pause must not move.
type retrans struct{ Segs, LossProbes, Timeouts int64 }

func (p *pair) retrans(i int) retrans {
	c := p.counters(i)
	return retrans{c["Tcp:RetransSegs"], c["TcpExt:TCPLossProbes"], c["TcpExt:TCPTimeouts"]}
}

func (r retrans) minus(o retrans) retrans {
	return retrans{r.Segs - o.Segs, r.LossProbes - o.LossProbes, r.Timeouts - o.Timeouts}
}

// stream writes size bytes every period to c until stop is closed.
func stream(c *net.TCPConn, size int, period time.Duration, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := make([]byte, size)
		tk := time.NewTicker(period)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}()
	return &wg
}

// drain reads s until it fails.
func drain(s *net.TCPConn) {
	go func() {
		b := make([]byte, 64<<10)
		for {
			if _, err := s.Read(b); err != nil {
				return
			}
		}
	}()
}
