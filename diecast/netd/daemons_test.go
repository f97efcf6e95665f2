package netd

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// daemonsSpec: two nodes at tdf 10.
const daemonsSpec = `name: %s
tdf: 10
nodes: {srv: {memory: 512Mi}, cli: {memory: 512Mi}}
links: [{ends: [srv, cli], bandwidth: 200Mbit, latency: 1ms}]
`

// TestDilatedDaemons: programs that daemonize (iperf3 -s -D, redis-server
// --daemonize yes, nginx's master and its workers) keep running after the
// exec that started them returned, still traced by the experiment's
// supervisor, and still in the experiment's time: two readings of their
// clock (redis TIME, nginx $msec) a second of real time apart are a tenth
// of a second apart at k = 10. Before, a daemonized iperf3 died as soon as
// its exec returned.
func TestDilatedDaemons(t *testing.T) {
	for _, c := range []string{"iperf3", "redis-server", "redis-cli", "nginx", "curl"} {
		testutil.MustHaveCommand(t, c)
	}
	st := upWith(t, daemonsSpec, UpOptions{Exe: fastDaemon(t), Dilate: true})
	must := func(n string, argv ...string) string { t.Helper(); return mustExec(t, st, n, argv...) }
	eventually := func(n string, argv ...string) string {
		t.Helper()
		return eventuallyExec(t, st, 20*time.Second, n, argv...)
	}
	must("srv", "iperf3", "-s", "-D")
	must("srv", "redis-server", "--port", "6379", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "yes")
	must("srv", "sh", "-c", `mkdir -p /tmp/nginx && cat > /tmp/nginx/nginx.conf <<'CONF'
pid /tmp/nginx/nginx.pid; error_log stderr; worker_processes 2;
events { worker_connections 64; }
http { access_log off; server { listen 80; location / { return 200 "$msec\n"; } } }
CONF
nginx -e stderr -p /tmp/nginx -c /tmp/nginx/nginx.conf`)
	eventually("cli", "redis-cli", "-h", "srv", "ping")
	eventually("cli", "curl", "-sf", "http://srv/")
	out := eventually("cli", "iperf3", "-c", "srv", "-n", "2M")
	if !strings.Contains(out, "receiver") {
		t.Errorf("iperf3 client: %s", out)
	}

	// Every daemon process (found from the host: its network namespace
	// is the node's) is alive and traced by the experiment's daemon.
	srv, err := st.Node("srv")
	if err != nil {
		t.Fatal(err)
	}
	procs := processesIn(t, srv.NetnsInode)
	for _, want := range []struct {
		comm string
		min  int
	}{{"iperf3", 1}, {"redis-server", 1}, {"nginx", 3}} {
		pids := procs[want.comm]
		if len(pids) < want.min {
			t.Errorf("%d %s processes in node srv after their execs returned, want %d (all: %v)", len(pids), want.comm, want.min, procs)
		}
		for _, pid := range pids {
			if tg := tracerTgid(t, pid); tg != st.Daemon.Pid {
				t.Errorf("%s pid %d: traced by process %d, want the experiment's supervisor %d", want.comm, pid, tg, st.Daemon.Pid)
			}
		}
	}

	// Their clocks run at 1/k.
	for _, c := range []struct {
		name string
		read func() float64 // seconds
	}{
		{"redis TIME", func() float64 {
			f := strings.Fields(must("cli", "redis-cli", "-h", "srv", "time"))
			if len(f) != 2 {
				t.Fatalf("redis TIME: %q", f)
			}
			s, _ := strconv.ParseFloat(f[0], 64)
			us, _ := strconv.ParseFloat(f[1], 64)
			return s + us/1e6
		}},
		{"nginx $msec", func() float64 {
			v, err := strconv.ParseFloat(strings.TrimSpace(must("cli", "curl", "-sf", "http://srv/")), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}},
	} {
		t0 := time.Now()
		v1 := c.read()
		t1 := time.Now()
		time.Sleep(time.Second)
		t2 := time.Now()
		v2 := c.read()
		t3 := time.Now()
		// The two readings were taken between t0..t1 and t2..t3 (real):
		// at k = 10 their difference lies in [(t2-t1)/10, (t3-t0)/10],
		// give or take the readings' resolution (nginx: 1 ms).
		lo, hi := t2.Sub(t1).Seconds()/10-0.001, t3.Sub(t0).Seconds()/10+0.001
		d := v2 - v1
		t.Logf("%s: %.4f s virtual in [%.4f, %.4f]", c.name, d, lo, hi)
		if d < lo || d > hi {
			t.Errorf("%s: two readings %.3f s of real time apart differ by %.4f s, want %.4f..%.4f (k = 10)", c.name, t2.Sub(t1).Seconds(), d, lo, hi)
		}
	}
}

// processesIn lists, by command name, the processes whose network
// namespace has inode ino.
func processesIn(t *testing.T, ino uint64) map[string][]int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var s syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name(), "ns/net"), &s) != nil || s.Ino != ino {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		c := strings.TrimSpace(string(comm))
		out[c] = append(out[c], pid)
	}
	return out
}

// tracerTgid is the process whose thread traces pid (0: none).
func tracerTgid(t *testing.T, pid int) int {
	t.Helper()
	tracer := statusField(t, pid, "TracerPid")
	if tracer == 0 {
		return 0
	}
	return statusField(t, tracer, "Tgid")
}

func statusField(t testing.TB, pid int, key string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			if f := strings.Fields(v); len(f) > 0 { // "21600 kB" for sizes
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	t.Fatalf("process %d: no %s in status", pid, key)
	return 0
}
