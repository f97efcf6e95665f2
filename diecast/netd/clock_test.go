package netd

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/clock"
)

// clockSpec: two nodes over one 5 ms, 100 Mbit/s link at tdf 10 (RTT 10
// ms virtual, 100 ms real), no CPU limit.
const clockSpec = `name: %s
tdf: 10
nodes: {a: {}, b: {}}
links:
  - {ends: [a, b], latency: 5ms, bandwidth: 100Mbit}
`

// virtNowIn reads node n's virtual CLOCK_REALTIME (ns).
func virtNowIn(t *testing.T, st *State, n string) int64 {
	t.Helper()
	out, _, es := execIn(t, st, n, "date", "+%s%N")
	v, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if es.Code != 0 || err != nil {
		t.Fatalf("date in %s: %q %+v", n, out, es)
	}
	return v
}

func askClock(t *testing.T, name string, req clock.Request) clock.Status {
	t.Helper()
	st, err := clock.Ask(name, req)
	if err != nil {
		t.Fatalf("clock %s: %v", req.Op, err)
	}
	return st
}

// retransSegs reads node n's TCP RetransSegs counter (its netns).
func retransSegs(t *testing.T, st *State, n string) int64 {
	t.Helper()
	out, _, _ := execIn(t, st, n, "cat", "/proc/net/snmp")
	var names []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, nm := range names {
			if nm == "RetransSegs" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	t.Fatalf("no RetransSegs in %s's /proc/net/snmp", n)
	return 0
}

// TestExperimentPause: pausing the experiment's clock for 5 s real
// freezes it everywhere: no virtual time passes in either node, the pings
// between them lose nothing and keep their virtual RTT across the pause,
// and a TCP stream does not retransmit because of it.
func TestExperimentPause(t *testing.T) {
	testutil.MustHaveCommand(t, "ping")
	testutil.MustHaveCommand(t, "iperf3")
	st := upWith(t, clockSpec, UpOptions{Exe: fastDaemon(t), Dilate: true})
	if _, _, es := execIn(t, st, "b", "iperf3", "-s", "-D", "-1"); es.Code != 0 {
		t.Fatalf("iperf3 -s -D: %+v", es)
	}
	retrans0 := retransSegs(t, st, "a")
	var wg sync.WaitGroup
	pings := map[string]string{}
	var iperf string
	var mu sync.Mutex
	for _, p := range [][2]string{{"a", "b"}, {"b", "a"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 30 pings 50 ms apart (virtual): 15 s of real time, the
			// pause in the middle.
			out, _, _, err := tryExec(t, st, p[0], "ping", "-U", "-n", "-c", "30", "-i", "0.05", p[1])
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			pings[p[0]] = out
			mu.Unlock()
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A steady stream at 40% of the link in small writes, so that
		// data is in flight whenever the pause comes: 1.2 s virtual.
		out, _, _, err := tryExec(t, st, "a", "iperf3", "-c", "b", "-b", "40M", "-l", "8K", "-t", "1.2", "-J")
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		iperf = out
		mu.Unlock()
	}()
	time.Sleep(4 * time.Second)
	r1, va1, vb1 := time.Now(), virtNowIn(t, st, "a"), virtNowIn(t, st, "b")
	p := askClock(t, st.Name, clock.Request{Op: "pause"})
	if !p.Paused {
		t.Fatal("clock not paused")
	}
	time.Sleep(5 * time.Second)
	frozen := virtNowIn(t, st, "a")
	askClock(t, st.Name, clock.Request{Op: "resume"})
	r2, va2, vb2 := time.Now(), virtNowIn(t, st, "a"), virtNowIn(t, st, "b")
	wg.Wait()

	// Virtual time across the pause: what the real time outside it is
	// worth at k = 10 (the execs reading the clock take some), not the
	// 0.5 s the pause would have been.
	outside := time.Duration(float64(r2.Sub(r1)-5*time.Second) / 10)
	for n, d := range map[string]int64{"a": va2 - va1, "b": vb2 - vb1} {
		if time.Duration(d) > outside+50*time.Millisecond {
			t.Errorf("node %s: %v of virtual time across the pause, want at most %v (the pause is worth 500 ms if it did not freeze)", n, time.Duration(d), outside)
		}
	}
	if d := time.Duration(frozen - va1); d > 100*time.Millisecond {
		t.Errorf("node a read %v more virtual time inside the pause", d)
	}
	for n, out := range pings {
		rtts := parseRTTs(out)
		if len(rtts) != 30 {
			t.Errorf("%s: %d of 30 pings answered\n%s", n, len(rtts), out)
			continue
		}
		med := median(rtts)
		for i, r := range rtts {
			if r < 10*time.Millisecond || r > med+2*time.Millisecond {
				t.Errorf("%s: ping %d took %v virtual, median %v (configured 10 ms)", n, i+1, r, med)
			}
		}
	}
	var res struct {
		End struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(iperf), &res); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, iperf)
	}
	if n := retransSegs(t, st, "a") - retrans0; res.End.SumSent.Retransmits != 0 || n != 0 {
		t.Errorf("TCP retransmitted across the pause: iperf3 %d, RetransSegs +%d", res.End.SumSent.Retransmits, n)
	}
}
