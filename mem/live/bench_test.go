package live

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/mem/ksm"
	"github.com/vmux/vmux/rt/ptrace"
)

// The comparison with KSM runs on the same processes in one run: first real
// KSM (the processes marked with PR_SET_MEMORY_MERGE, injected; fast
// scanning; every setting restored and everything unmerged after), then
// vmux mem live, each for the same settling time, each measured by the
// host's MemAvailable and by its own account (KSM's general_profit; the
// engine's net_saved_bytes = freed - store - the engine's own memory).
//
//	flock /work/test.lock go test -run '^$' -bench LiveVsKSM -benchtime 1x -timeout 30m ./mem/live
//
// They take minutes: gated by VMUX_LIVE_BENCH=1. VMUX_BENCH_SETTLE sets
// the settling time (default 150s).

func mustLiveBench(b *testing.B) {
	b.Helper()
	if os.Getenv("VMUX_LIVE_BENCH") != "1" {
		b.Skip("takes minutes: VMUX_LIVE_BENCH=1 runs it")
	}
	testutil.MustRoot(b)
}

func settleTime() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("VMUX_BENCH_SETTLE")); err == nil {
		return d
	}
	return 150 * time.Second
}

// readyTimeout bounds a process's start (VMUX_BENCH_READY, default 8m:
// TCG guests boot slowly on a busy shared host).
func readyTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("VMUX_BENCH_READY")); err == nil {
		return d
	}
	return 8 * time.Minute
}

type benchProc struct {
	name   string
	cmd    *exec.Cmd
	domain string
}

func (p *benchProc) pid() int { return p.cmd.Process.Pid }

func startBench(b *testing.B, name, domain string, ready string, bin string, args ...string) *benchProc {
	b.Helper()
	p, wait := startBenchAsync(b, name, domain, ready, bin, args...)
	wait()
	return p
}

// startBenchAsync starts a process; wait waits until it printed ready.
func startBenchAsync(b *testing.B, name, domain string, ready string, bin string, args ...string) (*benchProc, func()) {
	b.Helper()
	cmd := exec.Command(bin, args...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &benchProc{name: name, cmd: cmd, domain: domain}
	if ready == "" {
		return p, func() {}
	}
	ok := make(chan bool, 1)
	var mu sync.Mutex
	var last []string // the last lines, for a failure
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			if last = append(last, sc.Text()); len(last) > 20 {
				last = last[1:]
			}
			mu.Unlock()
			if strings.Contains(sc.Text(), ready) {
				ok <- true
				for sc.Scan() {
				}
				return
			}
		}
		ok <- false
	}()
	return p, func() {
		b.Helper()
		select {
		case good := <-ok:
			if !good {
				mu.Lock()
				defer mu.Unlock()
				b.Fatalf("%s exited before it was ready; it said:\n%s", name, strings.Join(last, "\n"))
			}
		case <-time.After(readyTimeout()):
			mu.Lock()
			defer mu.Unlock()
			b.Fatalf("%s not ready in %v; it said:\n%s", name, readyTimeout(), strings.Join(last, "\n"))
		}
	}
}

const pyWork = `import sys, time, random
seed = int(sys.argv[1]); random.seed(seed)
d = {"key%d" % i: "value-%d-%s" % (i, "x" * (i % 50)) for i in range(300000)}
l = [i * i for i in range(1000000)]
s = [random.random() for _ in range(200000)]
t = ["line %d of a log that every instance has\n" % i for i in range(200000)]
print("ready", flush=True)
while True:
    time.sleep(1)
    for i in range(1000):
        d["key%d" % random.randrange(1000)] = "hot"
`

const nodeWork = `const m = new Map(); for (let i = 0; i < 300000; i++) m.set("k" + i, {id: i, name: "user" + i, tags: ["a", "b"], seed: ` + "+process.argv[2]" + `});
const a = []; for (let i = 0; i < 500000; i++) a.push(i * 2);
console.log("ready"); setInterval(() => { for (let i = 0; i < 100; i++) m.set("k" + i, {hot: i}); }, 1000);`

const javaWork = `import java.util.*;
public class Hold { public static void main(String[] a) throws Exception {
  Map<String, String> m = new HashMap<>(); for (int i = 0; i < 300000; i++) m.put("k" + i, "value-" + i + "-" + a[0]);
  long[] big = new long[4000000]; for (int i = 0; i < big.length; i++) big[i] = i;
  System.out.println("ready"); System.out.flush();
  while (true) { Thread.sleep(1000); for (int i = 0; i < 100; i++) m.put("k" + i, "hot" + i); } } }
`

// startMix starts the heterogeneous mix: interpreters, servers and JVMs,
// several instances of each.
func startMix(b *testing.B) []*benchProc {
	dir := b.TempDir()
	var ps []*benchProc
	py := testutil.MustHaveCommand(b, "python3")
	for i := 0; i < 3; i++ {
		ps = append(ps, startBench(b, fmt.Sprintf("python%d", i), "", "ready", py, "-c", pyWork, strconv.Itoa(i)))
	}
	node := testutil.MustHaveCommand(b, "node")
	for i := 0; i < 2; i++ {
		ps = append(ps, startBench(b, fmt.Sprintf("node%d", i), "", "ready", node, "-e", nodeWork, strconv.Itoa(i)))
	}
	javac := testutil.MustHaveCommand(b, "javac")
	java := testutil.MustHaveCommand(b, "java")
	if err := os.WriteFile(filepath.Join(dir, "Hold.java"), []byte(javaWork), 0o600); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(javac, "-d", dir, filepath.Join(dir, "Hold.java")).CombinedOutput(); err != nil {
		b.Fatalf("javac: %v %s", err, out)
	}
	for i := 0; i < 2; i++ {
		ps = append(ps, startBench(b, fmt.Sprintf("java%d", i), "", "ready", java, "-Xmx256m", "-XX:+UseSerialGC", "-cp", dir, "Hold", strconv.Itoa(i)))
	}
	for i := 0; i < 2; i++ {
		r := &redisProc{port: freePort(b), dir: b.TempDir()}
		bin := testutil.MustHaveCommand(b, "redis-server")
		p := startBench(b, fmt.Sprintf("redis%d", i), "", "", bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--enable-debug-command", "yes", "--dir", r.dir)
		for k := 0; k < 100; k++ {
			if out, err := r.cli(5*time.Second, "PING"); err == nil && out == "PONG" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := r.cli(time.Minute, "DEBUG", "POPULATE", strconv.Itoa(300000+100000*i), "key", "100"); err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func memAvailable() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemAvailable:"); ok {
			return kb(strings.TrimSpace(v))
		}
	}
	return 0
}

func rssSum(ps []*benchProc) int64 {
	var n int64
	for _, p := range ps {
		if pi, err := readProc(p.pid()); err == nil {
			n += pi.rss
		}
	}
	return n
}

// ksmdCPU returns ksmd's CPU time.
func ksmdCPU() time.Duration {
	out, _ := exec.Command("pgrep", "-x", "ksmd").Output()
	pid := strings.TrimSpace(string(out))
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond // USER_HZ 100
}

// setMerge marks (or unmarks, unmerging its pages) a process for KSM with
// an injected prctl(PR_SET_MEMORY_MERGE).
func setMerge(pid int, on bool) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a, err := ptrace.Attach(pid)
	if err != nil {
		return err
	}
	v := uint64(0)
	if on {
		v = 1
	}
	_, err = a.Call(157, 67, v, 0, 0, 0) // prctl(PR_SET_MEMORY_MERGE)
	if derr := a.Detach(); err == nil {
		err = derr
	}
	return err
}

type phaseResult struct {
	availGain int64 // MemAvailable after - before
	rssDrop   int64 // the processes' RSS before - after
	store     int64 // what vmux holds for it (0 for KSM)
	ownSaved  int64 // general_profit, or net_saved_bytes
	cpu       time.Duration
	managed   int64 // RSS of the processes at the start
	settle    time.Duration
	detail    string
}

func (r phaseResult) cpuPerGBMin() float64 {
	return r.cpu.Seconds() / (float64(r.managed) / (1 << 30)) / r.settle.Minutes()
}

func phaseKSM(b *testing.B, ps []*benchProc, settle time.Duration) phaseResult {
	var r phaseResult
	r.managed, r.settle = rssSum(ps), settle
	before := memAvailable()
	st0, err := ksm.Read()
	if err != nil {
		b.Skip("no KSM: ", err)
	}
	settings, err := ksm.Tune(map[string]string{"pages_to_scan": "10000", "sleep_millisecs": "0", "run": "1"})
	defer func() {
		if err := settings.Restore(); err != nil {
			b.Errorf("restore KSM: %v", err)
		}
	}()
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range ps {
		if err := setMerge(p.pid(), true); err != nil {
			b.Fatalf("mark %s mergeable: %v", p.name, err)
		}
	}
	cpu0 := ksmdCPU()
	time.Sleep(settle)
	r.cpu = ksmdCPU() - cpu0
	st, _ := ksm.Read()
	r.availGain = memAvailable() - before
	r.rssDrop = r.managed - rssSum(ps)
	r.ownSaved = st.GeneralProfit - st0.GeneralProfit
	r.detail = fmt.Sprintf("pages_sharing %d, pages_shared %d, full_scans %d", st.PagesSharing, st.PagesShared, st.FullScans-st0.FullScans)
	// unmerge everything before the next phase
	for _, p := range ps {
		if err := setMerge(p.pid(), false); err != nil {
			b.Errorf("unmark %s: %v", p.name, err)
		}
	}
	return r
}

func phaseLive(b *testing.B, ps []*benchProc, settle, cold time.Duration, cross bool) (phaseResult, *Status) {
	var r phaseResult
	r.managed, r.settle = rssSum(ps), settle
	dir := filepath.Join(b.TempDir(), "live")
	before := memAvailable()
	cfg := Config{Dir: dir, Cold: cold}
	cfg.Mem.CrossDomain = cross
	pid, err := Start(Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if _, err := Call(dir, Request{Op: "stop"}, 10*time.Minute); err != nil {
			b.Errorf("stop: %v", err)
			syscallKill(pid)
		}
	}()
	t0 := time.Now()
	for _, p := range ps {
		resp, err := Call(dir, Request{Op: "attach", Pids: []int{p.pid()}, Domain: p.domain}, time.Minute)
		if err != nil || !resp.OK {
			b.Fatalf("attach %s: %v %+v", p.name, err, resp)
		}
	}
	time.Sleep(settle - time.Since(t0))
	resp, err := Call(dir, Request{Op: "status"}, time.Minute)
	if err != nil || resp.Status == nil {
		b.Fatal(err)
	}
	s := resp.Status
	r.availGain = memAvailable() - before
	r.rssDrop = r.managed - rssSum(ps)
	r.store = s.StoreBytes
	r.ownSaved = s.NetSavedBytes
	r.cpu = time.Duration(s.CPUSeconds * float64(time.Second))
	r.detail = fmt.Sprintf("held %d MiB (zero %d, shared %d, patched %d, compressed %d, raw %d pages), store %d MiB (payload %d, journal %d, engine %d), faults %d (p50 %.0f us, p99 %.0f us), came back hot %d",
		s.FreedBytes>>20, s.Held.Zero, s.Held.Shared, s.Held.Patched, s.Held.Compressed, s.Held.Raw,
		s.StoreBytes>>20, s.StorePayloadBytes>>20, s.JournalBytes>>20, s.EngineBytes>>20, s.Faults, s.FaultP50us, s.FaultP99us, s.CameBackHot)
	r.detail += fmt.Sprintf("; payload by kind: patched %.1f, compressed %.1f, raw %.1f MiB (live %.1f); pool records %.1f MiB",
		mib(s.PayloadByKind.Patched), mib(s.PayloadByKind.Compressed), mib(s.PayloadByKind.Raw), mib(s.StoreLiveBytes), mib(s.MetadataBytes))
	if s.Held.Compressed > 0 {
		r.detail += fmt.Sprintf("; compressed pages average %.0f bytes", float64(s.PayloadByKind.Compressed)/float64(s.Held.Compressed))
	}
	for _, p := range s.Processes {
		b.Logf("  %s pid %d: RSS %d -> %d MiB, held %d (zero %d, shared %d, patched %d, compressed %d, raw %d), evicted %d, faults %d, came back hot %d, rejected %d, cold %.0f s",
			p.Name, p.Pid, p.RSSBefore>>20, p.RSSNow>>20, p.PagesHeld, p.Held.Zero, p.Held.Shared, p.Held.Patched, p.Held.Compressed, p.Held.Raw,
			p.Evicted, p.Faults, p.CameBackHot, p.Rejected, p.ColdSeconds)
	}
	return r, s
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func syscallKill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

// compare runs KSM, then vmux within domains, then (if cross) vmux with
// --cross-domain, on the same processes.
func compare(b *testing.B, label string, ps []*benchProc, cross bool) {
	testutil.MustRoot(b)
	settle := settleTime()
	cold := settle / 5
	// let the workloads settle in memory first
	time.Sleep(10 * time.Second)
	b.Logf("%s: %d processes, RSS %d MiB, MemAvailable %d MiB; settling time %v per phase, cold %v",
		label, len(ps), rssSum(ps)>>20, memAvailable()>>20, settle, cold)
	k := phaseKSM(b, ps, settle)
	time.Sleep(10 * time.Second) // unmerged pages are back
	l, _ := phaseLive(b, ps, settle, cold, false)
	if cross {
		time.Sleep(10 * time.Second) // given back, and touched again or not
		x, _ := phaseLive(b, ps, settle, cold, true)
		b.Logf("vmux --cross-domain: MemAvailable +%d MiB, RSS -%d MiB - store %d MiB = %d MiB, net_saved %d MiB (%.2fx KSM), engine CPU %.1f s (%.2f s/GB/min); %s",
			x.availGain>>20, x.rssDrop>>20, x.store>>20, (x.rssDrop-x.store)>>20, x.ownSaved>>20, float64(x.ownSaved)/float64(max(k.ownSaved, 1)),
			x.cpu.Seconds(), x.cpuPerGBMin(), x.detail)
		b.ReportMetric(float64(x.ownSaved)/(1<<20), "vmux-cross-net-MiB")
	}
	b.Logf("KSM : MemAvailable +%d MiB, RSS -%d MiB, general_profit %d MiB, ksmd CPU %.1f s (%.2f s/GB/min); %s",
		k.availGain>>20, k.rssDrop>>20, k.ownSaved>>20, k.cpu.Seconds(), k.cpuPerGBMin(), k.detail)
	b.Logf("vmux: MemAvailable +%d MiB, RSS -%d MiB - store %d MiB = %d MiB, net_saved %d MiB, engine CPU %.1f s (%.2f s/GB/min); %s",
		l.availGain>>20, l.rssDrop>>20, l.store>>20, (l.rssDrop-l.store)>>20, l.ownSaved>>20, l.cpu.Seconds(), l.cpuPerGBMin(), l.detail)
	b.ReportMetric(float64(k.availGain)/(1<<20), "ksm-avail-MiB")
	b.ReportMetric(float64(k.ownSaved)/(1<<20), "ksm-profit-MiB")
	b.ReportMetric(float64(l.availGain)/(1<<20), "vmux-avail-MiB")
	b.ReportMetric(float64(l.ownSaved)/(1<<20), "vmux-net-MiB")
	b.ReportMetric(float64(l.rssDrop-l.store)/(1<<20), "vmux-rss-store-MiB")
	if k.availGain > 0 {
		b.ReportMetric(float64(l.availGain)/float64(k.availGain), "x-ksm-avail")
	}
	if k.ownSaved > 0 {
		b.ReportMetric(float64(l.ownSaved)/float64(k.ownSaved), "x-ksm")
	}
	b.ReportMetric(k.cpuPerGBMin(), "ksmd-cpu-s/GB/min")
	b.ReportMetric(l.cpuPerGBMin(), "vmux-cpu-s/GB/min")
}

func BenchmarkLiveVsKSMMix(b *testing.B) {
	mustLiveBench(b)
	for i := 0; i < b.N; i++ {
		compare(b, "mix", startMix(b), false)
	}
}

func BenchmarkLiveVsKSMQEMU(b *testing.B) {
	mustLiveBench(b)
	for i := 0; i < b.N; i++ {
		n := 3
		if v, err := strconv.Atoi(os.Getenv("VMUX_BENCH_GUESTS")); err == nil && v > 0 {
			n = v
		}
		compare(b, "qemu", startGuests(b, n, guestRAM), true)
	}
}
