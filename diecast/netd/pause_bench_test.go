package netd

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmux/vmux/rt/clock"
)

// BenchmarkExperimentPause: TestExperimentPause's scenario (pings both
// ways, a 40 Mbit/s iperf3 stream, a 5 s pause in the middle), once with
// the TCP freeze (the default) and once brought up with NoTCPFreeze, the
// baseline, in the same run. Pings go every 10 ms virtual over a 10 ms
// virtual RTT, so one is in flight at the pause. Reported per variant:
// the virtual time read in each node across the pause, the RTT of the
// pings in flight at the pause against the others, pings lost, iperf3's
// retransmits and node a's RetransSegs/TCPTimeouts/TCPLossProbes, and
// what the freeze held and took (the daemon's log).
//
//	go test -run '^$' -bench ExperimentPause -benchtime 1x -v ./diecast/netd/
func BenchmarkExperimentPause(b *testing.B) {
	for _, v := range []struct {
		name     string
		noFreeze bool
	}{{"freeze", false}, {"nofreeze", true}} {
		b.Run(v.name, func(b *testing.B) {
			for range b.N {
				f := pauseScenario(b, v.noFreeze)
				b.Logf("%s: %s", v.name, f)
				b.ReportMetric(float64(f.retrans), "retranssegs")
				b.ReportMetric(float64(f.iperfRetr), "iperf3-retr")
				b.ReportMetric(float64(f.lost), "pings-lost")
				b.ReportMetric(f.acrossMs, "rtt-across-ms")
				b.ReportMetric(f.outsideMs, "rtt-outside-ms")
			}
		})
	}
}

// pauseFigures is what one pause scenario measured.
type pauseFigures struct {
	virtAcross           map[string]time.Duration // virtual time read in each node across the pause, less the real time outside it at k
	lost                 int
	acrossMs, outsideMs  float64 // worst RTT of the pings in flight at the pause; median of the others
	nAcross              int
	iperfRetr            int
	retrans, rto, probes int64 // node a's RetransSegs, TCPTimeouts, TCPLossProbes deltas
	freezeLog            []string
}

func (f pauseFigures) String() string {
	return fmt.Sprintf("virtual time across the pause %v; pings lost %d; RTT of the %d pings in flight at the pause %.3f ms, others (median) %.3f ms; iperf3 retr %d; node a RetransSegs +%d TCPTimeouts +%d TCPLossProbes +%d\n%s",
		f.virtAcross, f.lost, f.nAcross, f.acrossMs, f.outsideMs, f.iperfRetr, f.retrans, f.rto, f.probes, strings.Join(f.freezeLog, "\n"))
}

func pauseScenario(tb testing.TB, noFreeze bool) pauseFigures {
	st := upWith(tb, clockSpec, UpOptions{Exe: fastDaemon(tb), Dilate: true, NoTCPFreeze: noFreeze})
	if _, _, es := execIn(tb, st, "b", "iperf3", "-s", "-D", "-1"); es.Code != 0 {
		tb.Fatalf("iperf3 -s -D: %+v", es)
	}
	ask := func(op string) {
		if _, err := clock.Ask(st.Name, clock.Request{Op: op}); err != nil {
			tb.Fatalf("clock %s: %v", op, err)
		}
	}
	vnow := func(n string) int64 {
		out, _, es := execIn(tb, st, n, "date", "+%s%N")
		v, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		if es.Code != 0 || err != nil {
			tb.Fatalf("date in %s: %q %+v", n, out, es)
		}
		return v
	}
	c0 := tcpCounters(tb, st, "a")
	var wg sync.WaitGroup
	var mu sync.Mutex
	pings := map[string]string{}
	var iperf string
	for _, p := range [][2]string{{"a", "b"}, {"b", "a"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, _, err := tryExec(tb, st, p[0], "ping", "-D", "-U", "-n", "-c", "150", "-i", "0.01", p[1])
			if err != nil {
				tb.Error(err)
			}
			mu.Lock()
			pings[p[0]] = out
			mu.Unlock()
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, _, _, err := tryExec(tb, st, "a", "iperf3", "-c", "b", "-b", "40M", "-l", "8K", "-t", "1.2", "-J")
		if err != nil {
			tb.Error(err)
		}
		mu.Lock()
		iperf = out
		mu.Unlock()
	}()
	time.Sleep(4 * time.Second)
	r1, va1, vb1 := time.Now(), vnow("a"), vnow("b")
	ask("pause")
	time.Sleep(5 * time.Second)
	frozen := map[string]int64{"a": vnow("a"), "b": vnow("b")}
	ask("resume")
	r2, va2, vb2 := time.Now(), vnow("a"), vnow("b")
	wg.Wait()
	time.Sleep(time.Second) // the last release
	c1 := tcpCounters(tb, st, "a")

	outside := time.Duration(float64(r2.Sub(r1)-5*time.Second) / 10)
	f := pauseFigures{virtAcross: map[string]time.Duration{"a": time.Duration(va2-va1) - outside, "b": time.Duration(vb2-vb1) - outside},
		retrans: c1["RetransSegs"] - c0["RetransSegs"], rto: c1["TCPTimeouts"] - c0["TCPTimeouts"], probes: c1["TCPLossProbes"] - c0["TCPLossProbes"]}
	var others []time.Duration
	for n, out := range pings {
		across, rest, answered := nearPings(out, frozen[n], 0)
		f.lost += 150 - answered
		f.nAcross += len(across)
		for _, r := range across {
			f.acrossMs = max(f.acrossMs, float64(r)/1e6)
		}
		others = append(others, rest...)
	}
	if len(others) > 0 {
		f.outsideMs = float64(median(others)) / 1e6
	}
	var res struct {
		End struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(iperf), &res); err != nil {
		tb.Fatalf("iperf3 output: %v\n%s", err, iperf)
	}
	f.iperfRetr = res.End.SumSent.Retransmits
	for _, l := range tcpLog(tb, st) {
		if _, m, ok := strings.Cut(l, "msg="); ok {
			f.freezeLog = append(f.freezeLog, "  "+m)
		}
	}
	return f
}

// tcpCounters reads node n's Tcp: (snmp) and TcpExt: (netstat) counters.
func tcpCounters(tb testing.TB, st *State, n string) map[string]int64 {
	tb.Helper()
	out, _, es := execIn(tb, st, n, "cat", "/proc/net/snmp", "/proc/net/netstat")
	if es.Code != 0 {
		tb.Fatalf("counters of %s: %+v", n, es)
	}
	c := map[string]int64{}
	names := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || (f[0] != "Tcp:" && f[0] != "TcpExt:") {
			continue
		}
		if names[f[0]] == nil {
			names[f[0]] = f
			continue
		}
		for i, nm := range names[f[0]] {
			if i > 0 && i < len(f) {
				c[nm], _ = strconv.ParseInt(f[i], 10, 64)
			}
		}
		names[f[0]] = nil
	}
	return c
}
