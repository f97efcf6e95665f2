package tcprto

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/internal/testutil"
)

func TestSetBounds(t *testing.T) {
	s := &Scaler{hz: 250}
	for _, k := range []float64{0, -1} {
		if err := s.Set(k); !errors.Is(err, ErrBadFactor) {
			t.Errorf("Set(%v) = %v, want ErrBadFactor", k, err)
		}
	}
}

func TestKernelHZ(t *testing.T) {
	testutil.MustRoot(t) // /proc/timer_list is root's
	hz, err := kernelHZ()
	if err != nil {
		t.Fatal(err)
	}
	// the configuration's value against the jiffies counter's rate
	j0, err := jiffies()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(500 * time.Millisecond)
	j1, _ := jiffies()
	rate := float64(j1-j0) / time.Since(t0).Seconds()
	if rate < 0.9*float64(hz) || rate > 1.1*float64(hz) {
		t.Fatalf("HZ %d, but jiffies advance %.0f a second", hz, rate)
	}
}

// synRTO starts a connection from node n to an address nobody answers
// and returns its state and initial RTO as the node's kernel reports them
// (TCP_INFO: tcpi_state, tcpi_rto in us), from a process in the node.
func synRTO(t *testing.T, st *netd.State, n, to string) (int, time.Duration) {
	t.Helper()
	const py = `import socket, struct, sys, time
s = socket.socket(); s.setblocking(False)
s.connect_ex((sys.argv[1], 9))
time.sleep(0.05)
b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
print(b[0], struct.unpack_from("I", b, 8)[0])`
	ns, err := st.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "out"))
	errf, _ := os.Create(filepath.Join(dir, "err"))
	in, _ := os.Open(os.DevNull)
	defer out.Close()
	defer errf.Close()
	defer in.Close()
	es, err := node.Exec(n, ns.Socket, node.ExecOptions{Argv: []string{"python3", "-c", py, to},
		Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/", Stdin: in, Stdout: out, Stderr: errf})
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	if err != nil || es.Code != 0 {
		t.Fatalf("in %s: %v %+v\n%s%s", n, err, es, o, e)
	}
	f := strings.Fields(string(o))
	if len(f) != 2 {
		t.Fatalf("in %s: %q", n, o)
	}
	state, _ := strconv.Atoi(f[0])
	us, _ := strconv.Atoi(f[1])
	return state, time.Duration(us) * time.Microsecond
}

const spec = `name: %s
nodes:
  a: {cpu: 0.5, memory: 128Mi}
  b: {cpu: 0.5, memory: 128Mi}
links:
  - {ends: [a, b], bandwidth: 100Mbit, latency: 1ms}
`

// TestScaleInitialRTO: a node whose cgroup has the program starts its
// connections with k x the kernel's 1 s initial RTO, k changes for new
// connections at once, a node without it keeps 1 s, and after Close
// nothing of it is left.
func TestScaleInitialRTO(t *testing.T) {
	testutil.MustRoot(t)
	name := fmt.Sprintf("rto%d", os.Getpid()%100000)
	path := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, spec, name), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := netd.Up(path, netd.UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	down := func() {
		if err := netd.Down(name, 5*time.Second); err != nil && !errors.Is(err, netd.ErrNotFound) {
			t.Error(err)
		}
	}
	t.Cleanup(down)
	// an address of the experiment's subnet that no node has
	pfx := netip.MustParsePrefix(st.Subnet)
	void := pfx.Addr()
	for range 200 {
		void = void.Next()
	}
	for _, n := range st.Nodes {
		if strings.HasPrefix(n.Address, void.String()+"/") {
			t.Fatalf("%s is node %s's address", void, n.Name)
		}
	}
	a, _ := st.Node("a")
	dir := node.BPFCgroup(a.Cgroups)
	if dir == "" {
		t.Fatalf("node a has no cgroup v2 directory: %v", a.Cgroups)
	}
	const synSent = 2
	check := func(n string, want time.Duration) {
		t.Helper()
		state, rto := synRTO(t, st, n, void.String())
		if state != synSent {
			t.Fatalf("%s: connection in state %d, want SYN_SENT (%d)", n, state, synSent)
		}
		// the kernel keeps it in jiffies: within one tick (4 ms at HZ 250)
		if d := rto - want; d < -10*time.Millisecond || d > 10*time.Millisecond {
			t.Errorf("%s: initial RTO %v, want %v", n, rto, want)
		} else {
			t.Logf("%s: initial RTO %v", n, rto)
		}
	}
	check("a", InitialRTO)
	s, err := New(4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Attach(dir); err != nil {
		t.Fatal(err)
	}
	check("a", 4*time.Second)
	check("b", InitialRTO)
	if err := s.Set(2.5); err != nil {
		t.Fatal(err)
	}
	check("a", 2500*time.Millisecond)
	if err := s.Set(1000); err != nil {
		t.Fatal(err)
	}
	if s.RTO() != maxRTO {
		t.Errorf("RTO at k = 1000: %v, want the kernel's cap %v", s.RTO(), maxRTO)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("a", InitialRTO)
	down()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("node a's cgroup v2 directory left after down: %v", err)
	}
}
