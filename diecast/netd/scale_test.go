package netd

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const scale64 = `name: %s
nodes:
  n: {count: 64, cpu: 0.1, memory: 64Mi}
switches: [s1]
links:
  - {ends: [n, s1], bandwidth: 100Mbit, latency: 1ms}
`

// TestScale64: 64 nodes come up in <= 10 s, reach each other, and go down
// in <= 5 s leaving nothing behind.
func TestScale64(t *testing.T) {
	t0 := time.Now()
	st := upFast(t, scale64)
	upTook := time.Since(t0)
	if len(st.Nodes) != 64 {
		t.Fatalf("%d nodes up, want 64", len(st.Nodes))
	}
	if _, _, es := execIn(t, st, "n1", "ping", "-c", "1", "-W", "2", "n64"); es.Code != 0 {
		t.Errorf("n1 cannot reach n64: %+v", es)
	}
	t0 = time.Now()
	if err := Down(st.Name, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	downTook := time.Since(t0)
	checkGone(t, st)
	t.Logf("64 nodes: up %v, down %v", upTook, downTook)
	if upTook > 10*time.Second {
		t.Errorf("up took %v, want <= 10 s", upTook)
	}
	if downTook > 5*time.Second {
		t.Errorf("down took %v, want <= 5 s", downTook)
	}
}

const scale256 = `name: %s
tdf: 10
nodes:
  n: {count: 256, memory: 64Mi}
switches: [s1]
links:
  - {ends: [n, s1], bandwidth: 100Mbit, latency: 1ms}
`

// TestDilatedScale256: one supervisor for a whole experiment: 256 dilated
// nodes each run a dilated process (a sleep, daemonized: it outlives its
// exec), all traced by the experiment's daemon; then each also runs a
// ping every 0.1 s of virtual time (clock reads, timed polls, packet
// timestamps). It reports the supervisor's memory and CPU per traced
// process (docs/benchmarks.md), against the same daemon before any
// process (the emulator's and the clock follower's own), and nothing is
// left after down. The nodes have no CPU limit: at 0.1 core and k = 10 a
// node's real share is 1% of a core, and each exec (the launcher, a Go
// program, then the command) takes a second of real time.
//
// It found a lost doorbell ring: the supervisor's wake-up signal, sent to
// the doorbell process, was now and then taken by one of its untraced
// threads, and adoptions stopped being answered after ~180 (2 runs of
// 8); a failure dumps the daemon's threads and goroutines.
func TestDilatedScale256(t *testing.T) {
	const n = 256
	t0 := time.Now()
	st := upWith(t, scale256, UpOptions{Exe: fastDaemon(t), Dilate: true})
	upTook := time.Since(t0)
	if len(st.Nodes) != n {
		t.Fatalf("%d nodes up, want %d", len(st.Nodes), n)
	}
	daemon := st.Daemon.Pid
	base0 := procCPU(t, daemon)
	time.Sleep(5 * time.Second)
	rss0, cpu0 := procRSS(t, daemon), procCPU(t, daemon)
	base := cpu0 - base0 // the daemon with no traced process
	inAll := func(argv ...string) time.Duration {
		t.Helper()
		t0 := time.Now()
		var wg sync.WaitGroup
		var dumpOnce sync.Once
		names := make(chan string)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for nd := range names {
					if _, errs, es, err := tryExec(t, st, nd, argv...); err != nil || es.Code != 0 {
						t.Errorf("%s: %v %+v %s", nd, err, es, errs)
						dumpOnce.Do(func() { dumpDaemon(t, st) })
					}
				}
			}()
		}
		for _, nd := range st.Nodes {
			names <- nd.Name
		}
		close(names)
		wg.Wait()
		return time.Since(t0)
	}
	execTook := inAll("sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 &")
	if t.Failed() {
		t.FailNow()
	}
	// Every node's sleep is traced by the daemon.
	traced := 0
	for i, nd := range st.Nodes {
		procs := processesIn(t, nd.NetnsInode)
		for _, pid := range procs["sleep"] {
			if tracerTgid(t, pid) == daemon {
				traced++
			} else if i < 3 {
				t.Logf("%s: sleep %d traced by %d", nd.Name, pid, tracerTgid(t, pid))
			}
		}
		if i < 3 && len(procs["sleep"]) == 0 {
			t.Logf("%s: no sleep: %v", nd.Name, procs)
		}
	}
	if traced != n {
		t.Fatalf("%d of %d nodes' sleeps traced by the experiment's supervisor", traced, n)
	}
	cpu1 := procCPU(t, daemon)
	rss1 := procRSS(t, daemon)
	time.Sleep(5 * time.Second)
	idle := procCPU(t, daemon) - cpu1 - base
	inAll("sh", "-c", "ping -q -i 0.1 127.0.0.1 </dev/null >/dev/null 2>&1 &")
	cpu2 := procCPU(t, daemon)
	time.Sleep(5 * time.Second)
	active := procCPU(t, daemon) - cpu2 - base
	rss2 := procRSS(t, daemon)
	perProc := float64(rss1-rss0) / n
	t.Logf("%d dilated nodes: up %v, %d execs %v (%.1f ms each, 8 at a time); supervisor (the daemon) RSS %.1f MiB -> %.1f MiB with %d traced sleeps (%.1f KiB per traced process) -> %.1f MiB with %d more pings",
		n, upTook.Round(time.Millisecond), n, execTook.Round(time.Millisecond), float64(execTook.Milliseconds())/n,
		float64(rss0)/(1<<20), float64(rss1)/(1<<20), n, perProc/1024, float64(rss2)/(1<<20), n)
	t.Logf("daemon CPU with no traced process %.2f%% of a core; the supervisor's beyond it: %d adoptions and execs %v (%.1f ms each); idle sleeps %.3f%% of a core (%.2f us/s per process); pings every 0.1 s virtual (1 s real) %.2f%% of a core (%.1f us/s per ping process)",
		100*base.Seconds()/5, n, cpu1-cpu0, float64((cpu1-cpu0).Microseconds())/1000/n, 100*idle.Seconds()/5, float64(idle.Microseconds())/5/n, 100*active.Seconds()/5, float64(active.Microseconds())/5/n)
	// What a supervisor holds per traced process is a few tracking
	// structures (KiB): a leak of, say, its injection buffers would show.
	if perProc > 256<<10 {
		t.Errorf("supervisor grew %.0f KiB per traced process, want < 256", perProc/1024)
	}
	if upTook > 60*time.Second {
		t.Errorf("%d dilated nodes took %v to come up, want <= 60 s", n, upTook)
	}
}

// procRSS is a process's resident set (bytes).
func procRSS(t *testing.T, pid int) int64 {
	t.Helper()
	return int64(statusField(t, pid, "VmRSS")) << 10
}

// procCPU is the CPU time (user + system) a process used so far.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}
