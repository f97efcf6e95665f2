package netem

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// pathSetup is a pair of network namespaces joined either by the emulator
// over TUNs or by a veth pair shaped with htb: the kernel baseline.
type pathSetup struct {
	nsA, nsB string
	addrB    string
}

// emuPath joins two netns through the emulator: a - s - b, both links at
// rate, zero latency.
func emuPath(b *testing.B, rate string, o TUNOptions) pathSetup {
	n := compile(b, fmt.Sprintf(`
name: benchtun
subnet: 10.231.0.0/24
nodes: {a: {}, b: {}}
switches: [s]
links:
  - {ends: [a, s], bandwidth: %[1]s}
  - {ends: [s, b], bandwidth: %[1]s}
`, rate))
	eps, ns := tunNet(b, n, fmt.Sprintf("vmuxb%d", os.Getpid()), o)
	e, err := New(n, eps, Options{})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run() }()
	b.Cleanup(func() {
		st := e.Stats()
		b.Logf("emulator: received %d delivered %d; a->s queue drops %d, s->b queue drops %d",
			st.Received, st.Delivered, st.Links[0].QueueDrops, st.Links[2].QueueDrops)
		e.Close()
		<-done
	})
	nb, _ := n.Node("b")
	return pathSetup{nsA: ns["a"], nsB: ns["b"], addrB: nb.Addr.String()}
}

// vethPath joins two netns with a veth pair, each end shaped by htb at rate.
func vethPath(b *testing.B, rate string) pathSetup {
	p := pathSetup{nsA: fmt.Sprintf("vmuxva%d", os.Getpid()), nsB: fmt.Sprintf("vmuxvb%d", os.Getpid()), addrB: "10.232.0.2"}
	for _, ns := range []string{p.nsA, p.nsB} {
		run(b, "ip", "netns", "add", ns)
		b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(b, "ip", "link", "add", "vmuxv0", "netns", p.nsA, "type", "veth", "peer", "name", "vmuxv1", "netns", p.nsB)
	for i, ns := range []string{p.nsA, p.nsB} {
		dev := fmt.Sprintf("vmuxv%d", i)
		run(b, "ip", "-n", ns, "addr", "add", fmt.Sprintf("10.232.0.%d/24", i+1), "dev", dev)
		run(b, "ip", "-n", ns, "link", "set", dev, "up")
		run(b, "ip", "-n", ns, "link", "set", "lo", "up")
		run(b, "ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1")
		run(b, "ip", "netns", "exec", ns, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", rate, "ceil", rate)
	}
	return p
}

// iperf runs an iperf3 server in nsB and a client in nsA with args, and
// returns the client's JSON end section.
func iperf(b testing.TB, p pathSetup, args ...string) map[string]any {
	srv := exec.Command("ip", "netns", "exec", p.nsB, "iperf3", "-s", "-1", "-p", "5299")
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var out []byte
	var err error
	for i := 0; i < 50; i++ {
		time.Sleep(50 * time.Millisecond)
		cmd := append([]string{"netns", "exec", p.nsA, "iperf3", "-c", p.addrB, "-p", "5299", "-J"}, args...)
		out, err = exec.Command("ip", cmd...).Output()
		if err == nil {
			break
		}
	}
	if err != nil {
		b.Fatalf("iperf3 %v: %v\n%s", args, err, out)
	}
	var res struct {
		End map[string]any `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("iperf3 JSON: %v", err)
	}
	return res.End
}

func num(m map[string]any, keys ...string) float64 {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return 0
		}
		v = mm[k]
	}
	f, _ := v.(float64)
	return f
}

// pingMedian returns the median ping RTT from nsA to nsB in microseconds.
func pingMedian(b *testing.B, p pathSetup, count int) float64 {
	out := run(b, "ip", "netns", "exec", p.nsA, "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.005", p.addrB)
	var rtts []float64
	for _, m := range rttRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		rtts = append(rtts, v*1000)
	}
	if len(rtts) < count*9/10 {
		b.Fatalf("ping: %d replies of %d", len(rtts), count)
	}
	sort.Float64s(rtts)
	return rtts[len(rtts)/2]
}

// BenchmarkTUNPath measures TCP goodput, UDP packet rate and ping RTT
// between two netns joined by the emulator over TUNs, and by veth + htb at
// the same rate (the kernel path), in the same run. Run with -benchtime 1x.
func BenchmarkTUNPath(b *testing.B) {
	testutil.MustRoot(b)
	testutil.MustHaveCommand(b, "iperf3")
	testutil.MustHaveCommand(b, "tc")
	for _, rate := range []string{"100Mbit", "1Gbit"} {
		for _, kind := range []string{"veth-htb", "emulator", "emulator-nooffload"} {
			b.Run(kind+"/"+rate, func(b *testing.B) {
				var p pathSetup
				switch kind {
				case "emulator":
					p = emuPath(b, rate, TUNOptions{})
				case "emulator-nooffload":
					p = emuPath(b, rate, TUNOptions{NoOffload: true})
				default:
					p = vethPath(b, rate)
				}
				rtt := pingMedian(b, p, 200)
				c0, t0 := cpuTime(), time.Now()
				tcp := iperf(b, p, "-t", "3")
				cores := (cpuTime() - c0).Seconds() / time.Since(t0).Seconds()
				c1, t1 := cpuTime(), time.Now()
				udp := iperf(b, p, "-u", "-l", "64", "-b", "0", "-t", "2")
				ucores := (cpuTime() - c1).Seconds() / time.Since(t1).Seconds()
				pk := num(udp, "sum", "packets")
				lost := num(udp, "sum", "lost_packets")
				secs := num(udp, "sum", "seconds")
				b.ReportMetric(num(tcp, "sum_received", "bits_per_second")/1e6, "tcp-Mbit/s")
				b.ReportMetric((pk-lost)/secs, "udp64-rx-pkt/s")
				b.ReportMetric(rtt, "ping-us")
				if kind != "veth-htb" {
					// The emulator's own CPU (this process; iperf3 runs apart),
					// which includes the receiving kernel stack its TUN writes
					// drive.
					b.ReportMetric(cores, "emu-cores-tcp")
					b.ReportMetric(ucores, "emu-cores-udp")
					b.ReportMetric((pk-lost)/secs/ucores, "udp64-pkt/s/emu-core")
				}
			})
		}
	}
}

// BenchmarkPingLead measures how far the median ping RTT over a - s - b
// (1 ms per link: 4 ms configured) lies above the configured RTT, for
// several Options.Lead values, in one run. Run with -benchtime 1x.
func BenchmarkPingLead(b *testing.B) {
	testutil.MustRoot(b)
	for _, lead := range []time.Duration{0, 50 * time.Microsecond, 100 * time.Microsecond} {
		b.Run(lead.String(), func(b *testing.B) {
			n := compile(b, `
name: lead
subnet: 10.237.0.0/24
nodes: {a: {}, b: {}}
switches: [s]
links:
  - {ends: [a, s], bandwidth: 1Gbit, latency: 1ms}
  - {ends: [s, b], bandwidth: 1Gbit, latency: 1ms}
`)
			eps, ns := tunNet(b, n, fmt.Sprintf("vmuxl%d", os.Getpid()), TUNOptions{})
			e, err := New(n, eps, Options{Lead: lead})
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- e.Run() }()
			defer func() { e.Close(); <-done }()
			nb, _ := n.Node("b")
			rtt := pingMedian(b, pathSetup{nsA: ns["a"], nsB: ns["b"], addrB: nb.Addr.String()}, 200)
			b.ReportMetric(rtt, "rtt-us")
			b.ReportMetric(rtt-4000, "over-configured-us")
		})
	}
}
