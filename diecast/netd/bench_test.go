package netd

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/internal/testutil"
)

// pairSpec: a and b joined through s1 by two links of the given rate and
// one-way latency each, and loss on a's link.
func pairSpec(rate, latency, loss, queue string) string {
	l := fmt.Sprintf("bandwidth: %s, latency: %s, loss: %s", rate, latency, loss)
	if queue != "" {
		l += ", queue: " + queue
	}
	l = strings.ReplaceAll(l, "%", "%%") // the result is a template for upWith
	return "name: %s\nnodes: {a: {}, b: {}}\nswitches: [s1]\nlinks:\n" +
		"  - {ends: [a, s1], " + l + "}\n  - {ends: [b, s1], " + l + "}\n"
}

// kernelPair is the baseline: two node sandboxes joined by a veth pair
// shaped by htb at rate on both ends (the kernel has no netem, so no delay).
type kernelPair struct {
	a, b *node.Node
}

func newKernelPair(b *testing.B, mbit int) *kernelPair {
	b.Helper()
	dir := b.TempDir()
	exp := fmt.Sprintf("kb%d", os.Getpid()%100000)
	start := func(name string) *node.Node {
		n, err := node.Start(node.Config{Experiment: exp, Name: name, Socket: filepath.Join(dir, name+".sock"),
			Exe: fastDaemon(b)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = n.Stop(time.Second) })
		return n
	}
	kp := &kernelPair{a: start("ka"), b: start("kb")}
	va := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("vmuxk%da", os.Getpid()%10000)}, PeerName: fmt.Sprintf("vmuxk%db", os.Getpid()%10000)}
	if err := netlink.LinkAdd(va); err != nil {
		b.Fatal(err)
	}
	peer, err := netlink.LinkByName(va.PeerName)
	if err != nil {
		netlink.LinkDel(va)
		b.Fatal(err)
	}
	if err := netlink.LinkSetNsPid(va, kp.a.Pid()); err != nil {
		netlink.LinkDel(va)
		b.Fatal(err)
	}
	if err := netlink.LinkSetNsPid(peer, kp.b.Pid()); err != nil {
		b.Fatal(err)
	}
	for i, side := range []struct {
		n   *node.Node
		dev string
	}{{kp.a, va.Name}, {kp.b, va.PeerName}} {
		script := fmt.Sprintf("ip link set lo up && ip addr add 10.250.0.%d/24 dev %s && ip link set %s up && "+
			"tc qdisc add dev %s root handle 1: htb default 1 && tc class add dev %s parent 1: classid 1:1 htb rate %dmbit",
			i+1, side.dev, side.dev, side.dev, side.dev, mbit)
		if _, errs, es := nodeExec(b, side.n, "sh", "-c", script); es.Code != 0 {
			b.Fatalf("configure kernel path: %s", errs)
		}
	}
	return kp
}

// nodeExec runs argv in a bare node (no experiment state).
func nodeExec(t testing.TB, n *node.Node, argv ...string) (string, string, node.ExitStatus) {
	st := &State{Nodes: []NodeState{{State: n.State()}}}
	return execIn(t, st, n.Name(), argv...)
}

func (kp *kernelPair) goodput(b *testing.B, secs int) float64 {
	st := &State{Nodes: []NodeState{{State: kp.a.State()}, {State: kp.b.State()}}}
	return iperfGoodputAddr(b, st, "ka", "kb", "10.250.0.2", secs)
}

// BenchmarkGoodput: iperf3 TCP goodput through vmux links (two hops of the
// rate, no latency) and through veth+htb at the same rate, same run.
func BenchmarkGoodput(b *testing.B) {
	testutil.MustRoot(b)
	testutil.MustHaveCommand(b, "iperf3")
	for _, mbit := range []int{10, 50, 100, 500, 1000} {
		b.Run(fmt.Sprintf("%dMbit", mbit), func(b *testing.B) {
			st := upFast(b, pairSpec(fmt.Sprintf("%dMbit", mbit), "0ms", "0%", ""))
			kp := newKernelPair(b, mbit)
			for range b.N {
				v := iperfGoodput(b, st, "a", "b", 5)
				k := kp.goodput(b, 5)
				want := float64(mbit) * 1e6 * 1448 / 1500
				b.ReportMetric(v/1e6, "vmux-Mbit/s")
				b.ReportMetric(k/1e6, "htb-Mbit/s")
				b.ReportMetric(v/want, "vmux/expected")
				b.ReportMetric(v/k, "vmux/htb")
			}
		})
	}
}

// BenchmarkRTT: median ping RTT over two links of 1, 5 and 20 ms one way
// (RTT 4x), and over the same hops without latency, same run.
func BenchmarkRTT(b *testing.B) {
	testutil.MustRoot(b)
	testutil.MustHaveCommand(b, "ping")
	for _, c := range []struct {
		ms   int
		lead time.Duration
	}{{1, 0}, {5, 0}, {20, 0}, {1, 50 * time.Microsecond}, {5, 50 * time.Microsecond}} {
		ms := c.ms
		b.Run(fmt.Sprintf("%dms-lead%v", ms, c.lead), func(b *testing.B) {
			spec := strings.ReplaceAll(rttSpec, "2ms", fmt.Sprintf("%dms", ms))
			st := upWith(b, spec, UpOptions{Exe: fastDaemon(b), Lead: c.lead})
			pingRTTs(b, st, "a", "b", 2)
			kp := newKernelPair(b, 10000)
			kst := &State{Nodes: []NodeState{{State: kp.a.State()}}}
			for range b.N {
				veth := median(pingRTTs(b, kst, "ka", "10.250.0.2", 100))
				b.ReportMetric(float64(veth)/1e3, "veth-rtt-us")
				var base []time.Duration
				done := make(chan struct{})
				go func() {
					out, _, _, _ := tryExec(b, st, "z1", "ping", "-n", "-c", "100", "-i", "0.05", "z2")
					base = parseRTTs(out)
					close(done)
				}()
				rtts := pingRTTs(b, st, "a", "b", 100)
				<-done
				want := time.Duration(4*ms) * time.Millisecond
				b.ReportMetric(float64(median(rtts))/1e3, "rtt-us")
				b.ReportMetric(float64(median(base))/1e3, "zero-latency-rtt-us")
				b.ReportMetric(float64(median(rtts)-want)/1e3, "excess-us")
				b.ReportMetric(float64(median(rtts)-median(base)-want)/1e3, "added-minus-configured-us")
			}
		})
	}
}

// BenchmarkLoss: 2000 pings over a path whose first link loses p each way;
// a ping is answered if its request and reply both pass (1-p)^2.
func BenchmarkLoss(b *testing.B) {
	testutil.MustRoot(b)
	testutil.MustHaveCommand(b, "ping")
	for _, pct := range []float64{1, 5, 20} {
		b.Run(fmt.Sprintf("%g%%", pct), func(b *testing.B) {
			spec := fmt.Sprintf("name: %%s\nnodes: {a: {}, b: {}}\nswitches: [s1]\nlinks:\n  - {ends: [a, s1], loss: %g%%%%}\n  - {ends: [b, s1]}\n", pct)
			st := upFast(b, spec)
			const n = 2000
			for range b.N {
				out, _, _ := execIn(b, st, "a", "ping", "-n", "-q", "-c", strconv.Itoa(n), "-i", "0.002", "-W", "1", "b")
				recv := parseReceived(out)
				p := pct / 100
				want := 1 - (1-p)*(1-p)
				got := 1 - float64(recv)/n
				sd := math.Sqrt(want * (1 - want) / n)
				b.ReportMetric(got*100, "loss-%")
				b.ReportMetric(want*100, "expected-%")
				b.ReportMetric((got-want)/sd, "z-score")
			}
		})
	}
}

func parseReceived(out string) int {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[2] == "transmitted," {
			n, _ := strconv.Atoi(f[3])
			return n
		}
	}
	return -1
}

// BenchmarkQueueDelay: a UDP flood at twice the 10 Mbit/s link rate keeps
// the 64 KiB drop-tail queue full; pings then wait queue/rate = 52.4 ms more.
func BenchmarkQueueDelay(b *testing.B) {
	testutil.MustRoot(b)
	testutil.MustHaveCommand(b, "iperf3")
	st := upFast(b, "name: %s\nnodes: {a: {}, b: {}}\nswitches: [s1]\nlinks:\n"+
		"  - {ends: [a, s1], bandwidth: 10Mbit, latency: 1ms, queue: 64KiB}\n  - {ends: [b, s1], latency: 1ms}\n")
	for range b.N {
		idle := median(pingRTTs(b, st, "a", "b", 30))
		done := make(chan struct{})
		go func() {
			_, _, _, _ = tryExec(b, st, "b", "iperf3", "-s", "-1")
			close(done)
		}()
		time.Sleep(300 * time.Millisecond)
		go func() { _, _, _, _ = tryExec(b, st, "a", "iperf3", "-u", "-b", "20M", "-c", "b", "-t", "4") }()
		time.Sleep(time.Second)
		loaded := median(pingRTTs(b, st, "a", "b", 30))
		<-done
		want := time.Duration(float64(64<<10) * 8 / 10e6 * float64(time.Second))
		b.ReportMetric(float64(idle)/1e6, "idle-rtt-ms")
		b.ReportMetric(float64(loaded)/1e6, "loaded-rtt-ms")
		b.ReportMetric(float64(loaded-idle)/1e6, "queue-delay-ms")
		b.ReportMetric(float64(want)/1e6, "expected-ms")
	}
}

// BenchmarkScale64: bring-up and teardown of 64 nodes.
func BenchmarkScale64(b *testing.B) {
	testutil.MustRoot(b)
	for range b.N {
		t0 := time.Now()
		st := upFast(b, scale64)
		up := time.Since(t0)
		t0 = time.Now()
		if err := Down(st.Name, 3*time.Second); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(up.Seconds(), "up-s")
		b.ReportMetric(time.Since(t0).Seconds(), "down-s")
	}
}

// BenchmarkScale: bring-up and teardown of N nodes of 0.1 core and 64 MiB
// on one switch (the 1,000-node aim), with the host memory each
// node costs (MemAvailable before and after), the daemon's RSS and what
// its memory cgroup is charged, and a ping across the whole experiment.
//
//	go test -run '^$' -bench Scale/ -benchtime 1x ./diecast/netd/
func BenchmarkScale(b *testing.B) {
	testutil.MustRoot(b)
	for _, n := range []int{250, 500, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			spec := fmt.Sprintf("name: %%s\nnodes:\n  n: {count: %d, cpu: 0.1, memory: 64Mi}\nswitches: [s1]\nlinks:\n  - {ends: [n, s1], bandwidth: 100Mbit, latency: 1ms}\n", n)
			for range b.N {
				m0 := memAvailable(b)
				t0 := time.Now()
				st := upFast(b, spec)
				up := time.Since(t0)
				time.Sleep(2 * time.Second)
				perNode := float64(m0-memAvailable(b)) / float64(n)
				rss := statusField(b, st.Daemon.Pid, "VmRSS") << 10
				charged, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", "vmux", st.Name, DaemonCgroup, "memory.usage_in_bytes"))
				ch, _ := strconv.ParseInt(strings.TrimSpace(string(charged)), 10, 64)
				if _, _, es := execIn(b, st, "n1", "ping", "-c", "1", "-W", "2", fmt.Sprintf("n%d", n)); es.Code != 0 {
					b.Errorf("n1 cannot reach n%d: %+v", n, es)
				}
				t0 = time.Now()
				if err := Down(st.Name, 3*time.Second); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(up.Seconds(), "up-s")
				b.ReportMetric(time.Since(t0).Seconds(), "down-s")
				b.ReportMetric(perNode/(1<<20), "host-MiB/node")
				b.ReportMetric(float64(rss)/(1<<20), "daemon-rss-MiB")
				b.ReportMetric(float64(ch)/(1<<20), "daemon-cgroup-MiB")
			}
		})
	}
}

// memAvailable is the host's MemAvailable (bytes).
func memAvailable(b testing.TB) int64 {
	b.Helper()
	buf, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(buf), "\n") {
		if v, ok := strings.CutPrefix(l, "MemAvailable:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no MemAvailable in /proc/meminfo")
	return 0
}
