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
// processes alternately, rounds A B A B. Between windows the processes
// idle long enough for the engine to take their cold pages, so a window
// with the engine attached pays for the faults that bring them back.
//
//	VMUX_LIVE_BENCH=1 flock /work/test.lock go test -run '^$' -bench LiveOverhead -benchtime 1x -timeout 30m ./mem/live

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

func BenchmarkLiveOverhead(b *testing.B) {
	mustLiveBench(b)
	rb := testutil.MustHaveCommand(b, "redis-benchmark")
	py := testutil.MustHaveCommand(b, "python3")
	const (
		idle   = 40 * time.Second // for the engine to take the cold pages (cold 10 s)
		window = 15.0             // seconds of python work per window
		keys   = "300000"
	)
	for i := 0; i < b.N; i++ {
		r := startRedis(b)
		redisBench(b, rb, r.port, "-t", "set", "-n", keys, "-r", keys, "-d", "200", "-c", "20")
		cmd := exec.Command(py, "-c", pyLoad)
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
		pp := &pyLoadProc{cmd: cmd, in: in, out: bufio.NewReader(out)}
		if l, _ := pp.out.ReadString('\n'); strings.TrimSpace(l) != "ready" {
			b.Fatalf("python: %q", l)
		}
		pids := []int{r.cmd.Process.Pid, cmd.Process.Pid}
		var sum [2][2]float64 // [attached][redis, python]
		for round := 0; round < 2; round++ {
			for _, attached := range []bool{false, true} {
				dir := filepath.Join(b.TempDir(), "live")
				if attached {
					if _, err := Start(Options{Config: Config{Dir: dir, Cold: 10 * time.Second}}); err != nil {
						b.Fatal(err)
					}
					if resp, err := Call(dir, Request{Op: "attach", Pids: pids}, time.Minute); err != nil || !resp.OK {
						b.Fatalf("attach: %v %+v", err, resp)
					}
				}
				time.Sleep(idle)
				var held int64
				if attached {
					if resp, err := Call(dir, Request{Op: "status"}, time.Minute); err == nil && resp.Status != nil {
						held = resp.Status.PagesHeld
					}
				}
				rps := redisBench(b, rb, r.port, "-t", "get", "-n", "400000", "-r", keys, "-c", "20")
				time.Sleep(idle)
				ops := pp.rate(b, window)
				var faults int64
				var p50, p99 float64
				if attached {
					resp, err := Call(dir, Request{Op: "status"}, time.Minute)
					if err == nil && resp.Status != nil {
						faults, p50, p99 = resp.Status.Faults, resp.Status.FaultP50us, resp.Status.FaultP99us
					}
					if _, err := Call(dir, Request{Op: "stop"}, 5*time.Minute); err != nil {
						b.Fatalf("stop: %v", err)
					}
				}
				k := 0
				if attached {
					k = 1
				}
				sum[k][0] += rps
				sum[k][1] += ops
				b.Logf("round %d attached=%v: redis GET %.0f req/s, python %.0f ops/s; pages held before the redis window %d, faults %d (p50 %.0f us, p99 %.0f us)",
					round, attached, rps, ops, held, faults, p50, p99)
			}
		}
		b.ReportMetric(sum[1][0]/sum[0][0], "redis-x-detached")
		b.ReportMetric(sum[1][1]/sum[0][1], "python-x-detached")
		b.Logf("attached / detached: redis %.3f, python %.3f", sum[1][0]/sum[0][0], sum[1][1]/sum[0][1])
		if err := r.cmd.Process.Kill(); err == nil {
			r.cmd.Wait()
		}
	}
}
