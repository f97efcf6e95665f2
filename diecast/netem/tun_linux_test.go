package netem

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/topology"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
)

// run runs a command and fails the test with its output on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// tunNet creates one netns per node of n (named prefix-node, deleted at
// cleanup), a TUN "vmux0" in each with the node's address, and returns
// the endpoints and netns names.
func tunNet(t testing.TB, n *topology.Network, prefix string, o TUNOptions) (map[string]Endpoint, map[string]string) {
	t.Helper()
	eps := map[string]Endpoint{}
	ns := map[string]string{}
	for _, nd := range n.Nodes {
		name := fmt.Sprintf("%s-%s", prefix, nd.Name)
		run(t, "ip", "netns", "add", name)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		tun, err := OpenTUNInNetnsWith("/run/netns/"+name, "vmux0", o)
		if err != nil {
			t.Fatal(err)
		}
		if tun.Name() != "vmux0" {
			t.Fatalf("TUN name %q", tun.Name())
		}
		run(t, "ip", "-n", name, "addr", "add", nd.Prefix(n).String(), "dev", "vmux0")
		run(t, "ip", "-n", name, "link", "set", "vmux0", "up")
		run(t, "ip", "-n", name, "link", "set", "lo", "up")
		eps[nd.Name] = tun
		ns[nd.Name] = name
	}
	return eps, ns
}

var rttRE = regexp.MustCompile(`time=([0-9.]+) ms`)

// TestPingThroughTUN pings between two network namespaces whose TUNs the
// emulator joins over a - s1 - b with 5 ms per link: the RTT is 20 ms plus
// serialization, never less. Afterwards no TUN, netns or fd remains.
func TestPingThroughTUN(t *testing.T) {
	testutil.MustRoot(t)
	testutil.MustHaveCommand(t, "ip")
	ping := testutil.MustHaveCommand(t, "ping")
	t.Run("offload", func(t *testing.T) { pingTUN(t, ping, TUNOptions{}) })
	t.Run("plain", func(t *testing.T) { pingTUN(t, ping, TUNOptions{NoOffload: true}) })
}

func pingTUN(t *testing.T, ping string, o TUNOptions) {
	n := compile(t, twoNodes)
	fds := fdCount(t)
	prefix := fmt.Sprintf("vmuxt%d", os.Getpid())
	eps, ns := tunNet(t, n, prefix, o)
	for name, ep := range eps {
		// This kernel has TSO/USO on TUN: offload mode must be taken.
		if got := ep.(*TUN).Offload(); got == o.NoOffload {
			t.Fatalf("node %s: Offload() = %v with %+v", name, got, o)
		}
	}
	e, err := New(n, eps, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run() }()
	b, _ := n.Node("b")
	want := 20.0 // ms: 4 x 5 ms; serialization of 84 B at 100 Mbit/s adds 27 us
	bestOf(t, 5, func() error {
		out := run(t, "ip", "netns", "exec", ns["a"], ping, "-n", "-c", "20", "-i", "0.02", "-W", "2", b.Addr.String())
		var rtts []float64
		for _, m := range rttRE.FindAllStringSubmatch(out, -1) {
			v, _ := strconv.ParseFloat(m[1], 64)
			rtts = append(rtts, v)
		}
		if len(rtts) != 20 {
			t.Fatalf("%d replies of 20; ping output:\n%s", len(rtts), out)
		}
		sort.Float64s(rtts)
		lo, med := rtts[0], rtts[10]
		t.Logf("ping rtt min %.3f median %.3f max %.3f ms (configured %.1f)", lo, med, rtts[19], want)
		if lo < want {
			t.Fatalf("rtt %.3f ms below the configured %.1f ms", lo, want)
		}
		if med > want*1.02+0.2 {
			return fmt.Errorf("median rtt %.3f ms, want %.1f ms within 2%% + 200us", med, want)
		}
		return nil
	})
	st := e.Stats()
	if st.Delivered < 20 || st.Links[0].Sent == 0 {
		t.Fatalf("stats %+v", st)
	}
	e.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, name := range ns {
		if err := exec.Command("ip", "-n", name, "link", "show", "vmux0").Run(); err == nil {
			t.Errorf("TUN vmux0 still exists in %s after Close", name)
		}
		run(t, "ip", "netns", "del", name)
	}
	if out := run(t, "ip", "netns", "list"); strings.Contains(out, prefix) {
		t.Errorf("netns left behind:\n%s", out)
	}
	if got := fdCount(t); got > fds {
		t.Errorf("%d fds open after Close, %d before", got, fds)
	}
}

// NewTUN accepts a TUN in the right mode (even a blocking fd) and rejects
// files that are not.
func TestNewTUN(t *testing.T) {
	testutil.MustRoot(t)
	f, name, err := linux.OpenTUNPolled("")
	if err != nil {
		t.Fatal(err)
	}
	tun, err := NewTUN(f)
	if err != nil {
		t.Fatal(err)
	}
	if tun.Name() != name || !strings.HasPrefix(name, "tun") {
		t.Fatalf("name %q vs %q", tun.Name(), name)
	}
	// Close unblocks a pending Read.
	rerr := make(chan error, 1)
	go func() {
		_, err := tun.Read(make([]byte, 2048))
		rerr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	tun.Close()
	select {
	case err := <-rerr:
		if !errClosed(err) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	null, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if _, err := NewTUN(null); !errors.Is(err, linux.ErrNotTUN) {
		t.Fatalf("NewTUN(/dev/null): %v", err)
	}
}

// TestTCPThroughTUN moves TCP through the emulator in both TUN modes: the
// offload mode splits and re-coalesces segments (a checksum or sequence
// slip would stall the transfer). Goodput may never exceed the link
// (100 Mbit/s x 1448/1500 payload); how close it comes is measured in
// BenchmarkTUNPath, since it depends on the host's load.
func TestTCPThroughTUN(t *testing.T) {
	testutil.MustRoot(t)
	testutil.MustHaveCommand(t, "ip")
	testutil.MustHaveCommand(t, "iperf3")
	for _, o := range []TUNOptions{{}, {NoOffload: true}} {
		t.Run(fmt.Sprintf("nooffload=%v", o.NoOffload), func(t *testing.T) {
			n := compile(t, `
name: tcp
subnet: 10.233.0.0/24
nodes: {a: {}, b: {}}
switches: [s]
links:
  - {ends: [a, s], bandwidth: 100Mbit, latency: 1ms}
  - {ends: [s, b], bandwidth: 100Mbit, latency: 1ms}
`)
			eps, ns := tunNet(t, n, fmt.Sprintf("vmuxc%d", os.Getpid()), o)
			e, err := New(n, eps, Options{})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- e.Run() }()
			defer func() { e.Close(); <-done }()
			nb, _ := n.Node("b")
			end := iperf(t, pathSetup{nsA: ns["a"], nsB: ns["b"], addrB: nb.Addr.String()}, "-t", "2")
			got := num(end, "sum_received", "bits_per_second")
			t.Logf("goodput %.2f Mbit/s, %.0f bytes received", got/1e6, num(end, "sum_received", "bytes"))
			if max := 100e6 * 1448 / 1500 * 1.01; got > max || got < 10e6 {
				t.Fatalf("goodput %.2f Mbit/s outside (10, %.2f]", got/1e6, max/1e6)
			}
		})
	}
}

// TestTUNReadWrite answers a ping by hand through the single-packet Read
// and Write of a TUN, in both modes: what the node sends comes out of Read
// as one bare IPv4 packet, and a packet given to Write reaches the node.
func TestTUNReadWrite(t *testing.T) {
	testutil.MustRoot(t)
	testutil.MustHaveCommand(t, "ip")
	ping := testutil.MustHaveCommand(t, "ping")
	n := compile(t, "name: rw\nsubnet: 10.236.0.0/24\nnodes: {a: {}}\n")
	for _, o := range []TUNOptions{{}, {NoOffload: true}} {
		t.Run(fmt.Sprintf("nooffload=%v", o.NoOffload), func(t *testing.T) {
			eps, ns := tunNet(t, n, fmt.Sprintf("vmuxrw%d", os.Getpid()), o)
			tun := eps["a"].(*TUN)
			defer tun.Close()
			cmd := exec.Command("ip", "netns", "exec", ns["a"], ping, "-n", "-c", "1", "-W", "3", "10.236.0.77")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 65536)
			var req []byte
			for req == nil {
				k, err := tun.Read(buf)
				if err != nil {
					t.Fatal(err)
				}
				// Skip IPv6 chatter; take the ICMP echo request.
				if p := buf[:k]; k >= 28 && p[0]>>4 == 4 && p[9] == 1 && p[20] == 8 {
					req = append([]byte(nil), p...)
				}
			}
			if dst := fmt.Sprintf("%d.%d.%d.%d", req[16], req[17], req[18], req[19]); dst != "10.236.0.77" {
				t.Fatalf("echo request to %s", dst)
			}
			// Turn it into the reply: swap addresses (the IP checksum is
			// unchanged), type 8 -> 0 (ICMP checksum + 0x0800).
			rep := append([]byte(nil), req...)
			copy(rep[12:16], req[16:20])
			copy(rep[16:20], req[12:16])
			rep[20] = 0
			sum := uint32(rep[22])<<8 | uint32(rep[23]) + 0x0800
			sum = (sum & 0xffff) + sum>>16
			rep[22], rep[23] = byte(sum>>8), byte(sum)
			if k, err := tun.Write(rep); err != nil || k != len(rep) {
				t.Fatalf("Write: %d, %v", k, err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("ping got no reply: %v", err)
			}
		})
	}
}
