package live

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// Overhead: the throughput of a real redis (redis-benchmark GETs over its
// whole key space) and of a python workload (lookups and updates over a
// large dict) with vmux mem live attached against not attached, the same
// processes alternately, rounds A B A B (see BenchmarkLiveOverhead).
//
//	VMUX_LIVE_BENCH=1 flock /work/test.lock go test -run '^$' -bench LiveOverhead/steady -benchtime 1x -timeout 30m ./mem/live

const pyLoad = `import sys, time, random
random.seed(1)
d = {"key%d" % i: ["value-%d" % i, i, str(i) * 3] for i in range(400000)}
keys = list(d)
print("ready", flush=True)
for line in sys.stdin:
    secs = float(line)
    n = 0; end = time.time() + secs
    while time.time() < end:
        for _ in range(1000):
            k = keys[random.randrange(len(keys))]
            v = d[k]
            d[k] = [v[0], v[1] + 1, v[2]]
        n += 1000
    print(n / secs, flush=True)
`

type pyLoadProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func (p *pyLoadProc) rate(b *testing.B, secs float64) float64 {
	fmt.Fprintf(p.in, "%g\n", secs)
	l, err := p.out.ReadString('\n')
	if err != nil {
		b.Fatalf("python: %v", err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(l), 64)
	if err != nil {
		b.Fatalf("python: %q", l)
	}
	return v
}

func redisBench(b *testing.B, bin string, port int, args ...string) float64 {
	a := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-q", "--csv"}, args...)
	out, err := exec.Command(bin, a...).Output()
	if err != nil {
		b.Fatalf("redis-benchmark: %v %s", err, out)
	}
	// "test","rps",...
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, ",")
		if len(f) >= 2 && !strings.Contains(f[0], "test") {
			if v, err := strconv.ParseFloat(strings.Trim(f[1], `"`), 64); err == nil {
				return v
			}
		}
	}
	b.Fatalf("redis-benchmark output: %s", out)
	return 0
}

// overheadSetup starts a redis filled with 300,000 keys of 200 bytes and
// the python workload.
func overheadSetup(b *testing.B) (r *redisProc, pp *pyLoadProc, rb string) {
	rb = testutil.MustHaveCommand(b, "redis-benchmark")
	py := testutil.MustHaveCommand(b, "python3")
	r = startRedis(b)
	redisBench(b, rb, r.port, "-t", "set", "-n", overheadKeys, "-r", overheadKeys, "-d", "200", "-c", "20")
	cmd := exec.Command(py, "-c", pyLoad)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	pp = &pyLoadProc{cmd: cmd, in: in, out: bufio.NewReader(out)}
	if l, _ := pp.out.ReadString('\n'); strings.TrimSpace(l) != "ready" {
		b.Fatalf("python: %q", l)
	}
	return r, pp, rb
}

const overheadKeys = "300000"

// liveOn starts an engine over pids (cold 10 s) and returns a function
// that reports its status and stops it.
func liveOn(b *testing.B, pids []int) func() *Status {
	dir := filepath.Join(b.TempDir(), "live")
	if _, err := Start(Options{Config: Config{Dir: dir, Cold: 10 * time.Second}}); err != nil {
		b.Fatal(err)
	}
	if resp, err := Call(dir, Request{Op: "attach", Pids: pids}, time.Minute); err != nil || !resp.OK {
		b.Fatalf("attach: %v %+v", err, resp)
	}
	return func() *Status {
		var st *Status
		if resp, err := Call(dir, Request{Op: "status"}, time.Minute); err == nil {
			st = resp.Status
		}
		if _, err := Call(dir, Request{Op: "stop"}, 5*time.Minute); err != nil {
			b.Fatalf("stop: %v", err)
		}
		if st == nil {
			st = &Status{}
		}
		return st
	}
}

// BenchmarkLiveOverhead/steady: both workloads run all the time, side by
// side (redis-benchmark GETs over the whole key space, the python
// lookups), with the engine attached (after it settled for 40 s with the
// workloads running) or not; rounds A B A B. This is the paper's setting:
// what leaves is what the workloads do not use.
//
// BenchmarkLiveOverhead/after-idle: the worst case. The processes idle
// 40 s (4 x the cold time) before each window, so the engine takes
// nearly all their memory, and the window (redis, then python) brings it
// back by faults.
func BenchmarkLiveOverhead(b *testing.B) {
	mustLiveBench(b)
	b.Run("steady", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r, pp, rb := overheadSetup(b)
			pids := []int{r.cmd.Process.Pid, pp.cmd.Process.Pid}
			var sum [2][2]float64
			for round := 0; round < 2; round++ {
				for _, attached := range []bool{false, true} {
					var stop func() *Status
					if attached {
						stop = liveOn(b, pids)
					}
					// settle with the workloads running, then measure
					var rps, ops float64
					for _, measure := range []bool{false, true} {
						secs := 40.0
						if measure {
							secs = 30
						}
						done := make(chan float64)
						go func() { done <- pp.rate(b, secs) }()
						n := strconv.Itoa(int(secs * 120000)) // more than secs of GETs
						rdone := make(chan float64)
						go func() {
							rdone <- redisBench(b, rb, r.port, "-t", "get", "-n", n, "-r", overheadKeys, "-c", "20")
						}()
						// redis-benchmark stops at -n; python at secs: take
						// python's rate over secs and redis's over its run
						ops = <-done
						rps = <-rdone
					}
					var st Status
					if attached {
						st = *stop()
					}
					k := 0
					if attached {
						k = 1
					}
					sum[k][0] += rps
					sum[k][1] += ops
					b.Logf("round %d attached=%v: redis GET %.0f req/s, python %.0f ops/s (side by side); held %d pages, faults %d (p50 %.0f us, p99 %.0f us), came back hot %d, engine CPU %.1f s",
						round, attached, rps, ops, st.PagesHeld, st.Faults, st.FaultP50us, st.FaultP99us, st.CameBackHot, st.CPUSeconds)
				}
			}
			b.ReportMetric(sum[1][0]/sum[0][0], "redis-x-detached")
			b.ReportMetric(sum[1][1]/sum[0][1], "python-x-detached")
			b.Logf("attached / detached: redis %.3f, python %.3f", sum[1][0]/sum[0][0], sum[1][1]/sum[0][1])
		}
	})
	b.Run("after-idle", func(b *testing.B) {
		const (
			idle   = 40 * time.Second // for the engine to take the cold pages (cold 10 s)
			window = 15.0             // seconds of python work per window
		)
		for i := 0; i < b.N; i++ {
			r, pp, rb := overheadSetup(b)
			pids := []int{r.cmd.Process.Pid, pp.cmd.Process.Pid}
			var sum [2][2]float64 // [attached][redis, python]
			for round := 0; round < 2; round++ {
				for _, attached := range []bool{false, true} {
					var stop func() *Status
					if attached {
						stop = liveOn(b, pids)
					}
					time.Sleep(idle)
					rps := redisBench(b, rb, r.port, "-t", "get", "-n", "400000", "-r", overheadKeys, "-c", "20")
					time.Sleep(idle)
					ops := pp.rate(b, window)
					var st Status
					if attached {
						st = *stop()
					}
					k := 0
					if attached {
						k = 1
					}
					sum[k][0] += rps
					sum[k][1] += ops
					b.Logf("round %d attached=%v: redis GET %.0f req/s, python %.0f ops/s; faults %d (p50 %.0f us, p99 %.0f us), engine CPU %.1f s",
						round, attached, rps, ops, st.Faults, st.FaultP50us, st.FaultP99us, st.CPUSeconds)
				}
			}
			b.ReportMetric(sum[1][0]/sum[0][0], "redis-x-detached")
			b.ReportMetric(sum[1][1]/sum[0][1], "python-x-detached")
			b.Logf("attached / detached: redis %.3f, python %.3f", sum[1][0]/sum[0][0], sum[1][1]/sum[0][1])
		}
	})
}
