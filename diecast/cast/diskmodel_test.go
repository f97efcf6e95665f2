package cast

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/diskmodel"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
)

// diskSpec is examples/disk.yaml's throttled node, shortened: fio's 4 KiB
// random O_DIRECT reads at queue depth 1 for 2 s (virtual) on a disk
// throttled to 500 IOPS; %s is the experiment's name, MODEL the disk
// model (", latency_model: true" or nothing). The job reports fio's own median,
// mean and 99th percentile completion latency and its IOPS.
const diskSpec = `name: %s
nodes:
  slow: {cpu: 0.5, memory: 256Mi, disk: {read: 20MB/s, write: 20MB/s, read_iops: 500, write_iops: 500MODEL}}
  idle: {}
links: [{ends: [slow, idle]}]
workload:
  jobs:
    throttled:
      node: slow
      command: |
        fio --name=rr --filename=data --size=16M --rw=randread --bs=4k --direct=1 --ioengine=psync \
            --iodepth=1 --time_based --runtime=2 --output-format=json --output=fio.json >/dev/null
        exec python3 - <<'PY'
        import json
        j = json.load(open("fio.json"))["jobs"][0]["read"]
        c = j["clat_ns"]
        for m, v, u in (("iops", j["iops"], "1/s"), ("p50", c["percentile"]["50.000000"] / 1e6, "ms"),
                        ("mean", c["mean"] / 1e6, "ms"), ("p99", c["percentile"]["99.000000"] / 1e6, "ms")):
            print(json.dumps({"metric": m, "value": v, "unit": u}))
        PY
      metrics: json
`

// diskProbe is what a look from the host found while a run's job ran.
type diskProbe struct {
	mode    string
	want    int      // disk model servers the run must have
	servers int      // disk model servers running
	mounts  int      // disk model mounts (any mount namespace)
	cpu     int      // servers' v1 cpu/cpuacct cgroup lines
	bad     []string // those that are not vmux/<exp>/_disk-slow
	calib   []string // calibration files in the run's scratch directory
}

// TestDiskLatencyModel runs the disk study's throttled node in baseline and
// scaled mode at k=4, with the disk latency model and without, and checks
// what the model is for: without it the scale model's reads are k times
// too fast in the node's time (the device's service time is real time);
// with it they take about as long as the baseline's, at the same
// throttled IOPS. While the job runs the model's one server is outside
// the node's CPU cgroup and the calibration files are gone; after each
// run nothing of the model is left (server, mount, _disk-* cgroup).
func TestDiskLatencyModel(t *testing.T) {
	testutil.MustHaveCommand(t, "fio")
	testutil.MustHaveCommand(t, "python3")
	var mu sync.Mutex
	var probes []diskProbe
	var wg sync.WaitGroup
	run := func(model bool, kinds []string) *Report {
		t.Helper()
		opt := ""
		if model {
			opt = ", latency_model: true"
		}
		e, scratch := loadSpec(t, strings.Replace(diskSpec, "MODEL", opt, 1))
		dir := filepath.Join(t.TempDir(), "results")
		modes, _ := Plan(kinds, []float64{4})
		var once [8]sync.Once
		res, err := Run(context.Background(), e, Options{Modes: modes, Dir: dir, Exe: vmuxBinary(t), ScratchDir: scratch,
			Progress: func(p Progress) {
				// Each run's look from the host: once its fio runs in
				// the node (job events come only at the end).
				if p.Phase != "up" || p.Run < 1 || p.Run > len(once) {
					return
				}
				once[p.Run-1].Do(func() {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if !waitJob(e.Net.Name, 60*time.Second) {
							t.Errorf("%v: fio never ran in node slow", p.Mode)
							return
						}
						time.Sleep(300 * time.Millisecond) // within the job's 2-8 s
						pr := probe(e.Net.Name, scratch)
						pr.mode = p.Mode.String()
						if model && p.Mode.Dilated() {
							pr.want = 1 // baseline mode never has the model
						}
						mu.Lock()
						probes = append(probes, pr)
						mu.Unlock()
					}()
				})
			}})
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Error != "" {
				t.Fatalf("%v: %s", r.Mode, r.Error)
			}
		}
		if m := testutil.MountsOfType(fuseType); len(m) > 0 {
			t.Errorf("disk model mounts left after the run: %v", m)
		}
		if p := testutil.ProcessesNamed(reexec.Argv0(diskmodel.Role)); len(p) > 0 {
			t.Errorf("disk model servers left after the run: %v", p)
		}
		if c := testutil.CgroupDirsNamed("vmux/" + e.Net.Name); len(c) > 0 {
			t.Errorf("cgroups left after the run (_disk-* included): %v", c)
		}
		rep, err := LoadReport(dir)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	withModel := run(true, []string{Baseline, Scaled})
	without := run(false, []string{Scaled})
	base, scaled, plain := withModel.Modes[0].Metrics, withModel.Modes[1].Metrics, without.Modes[0].Metrics
	v := func(m map[string]MetricSummary, metric string) float64 {
		s, ok := m["throttled."+metric]
		if !ok || s.N != 1 || !(s.Mean > 0) {
			t.Fatalf("throttled.%s: %+v", metric, s)
		}
		return s.Mean
	}
	ratio := func(m map[string]MetricSummary, metric string) float64 { return v(m, metric) / v(base, metric) }
	t.Logf("baseline: p50 %.3f ms, mean %.3f ms, p99 %.3f ms, %.0f IOPS", v(base, "p50"), v(base, "mean"), v(base, "p99"), v(base, "iops"))
	for _, c := range []struct {
		name string
		m    map[string]MetricSummary
	}{{"scaled k=4 with the model", scaled}, {"scaled k=4 without", plain}} {
		t.Logf("%s: p50 %.3f ms (%.3fx), mean %.3f ms (%.3fx), p99 %.3f ms (%.3fx), %.0f IOPS (%.3fx)", c.name,
			v(c.m, "p50"), ratio(c.m, "p50"), v(c.m, "mean"), ratio(c.m, "mean"), v(c.m, "p99"), ratio(c.m, "p99"),
			v(c.m, "iops"), ratio(c.m, "iops"))
	}
	// The bounds, from 12 runs of this test on the shared 2-vCPU guest
	// (2026-12-03, under the test lock; fio's own percentiles, one run of
	// 2 s virtual each; 7 runs with the server of ae4ef35, 5 with the one
	// that follows the experiment's clock, b287780). Baseline p50
	// 0.065-0.078 ms, p99 94.9-97.0 ms (blkio's 100 ms slices: most reads
	// at device speed, a few waiting for the next slice), 499-500 IOPS.
	// Without the model: p50 0.216-0.284x (~1/4: the device's service
	// time is real time), p99 0.255-0.267x, IOPS 0.961-0.963x. With it:
	// p50 1.065-1.940x (the model's open median bias, docs/benchmarks.md
	// "The disk study"; being worked on, so 0.6-2.5 holds for a correct
	// model before and after), p99 0.956-0.989x, IOPS 1.000-1.002x. Means
	// are ~1/IOPS (the throttle's wait) in every case: logged, not judged.
	if r := ratio(plain, "p50"); r >= 0.5 {
		t.Errorf("without the model the scale model's p50 is %.3fx the baseline's, want ~1/4 (< 0.5)", r)
	}
	if r := ratio(plain, "p99"); r >= 0.5 {
		t.Errorf("without the model the scale model's p99 is %.3fx the baseline's, want ~1/4 (< 0.5)", r)
	}
	if r := ratio(scaled, "p50"); r < 0.6 || r > 2.5 {
		t.Errorf("with the model the scale model's p50 is %.3fx the baseline's, want ~1 (0.6-2.5)", r)
	}
	if r := ratio(scaled, "p99"); r < 0.8 || r > 1.2 {
		t.Errorf("with the model the scale model's p99 is %.3fx the baseline's, want ~1 (0.8-1.2)", r)
	}
	if r := ratio(scaled, "iops"); r < 0.9 || r > 1.1 {
		t.Errorf("with the model the throttled node's IOPS is %.3fx the baseline's, want 1 (0.9-1.1)", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(probes) != 3 {
		t.Fatalf("%d probes while the job ran, want 3: %+v", len(probes), probes)
	}
	for _, pr := range probes {
		t.Logf("%s while the job ran: %d servers, %d mounts, %d cpu cgroup lines, not _disk-slow %v, calibration files %v", pr.mode, pr.servers, pr.mounts, pr.cpu, pr.bad, pr.calib)
		if pr.servers != pr.want || pr.mounts != pr.want {
			t.Errorf("%s: %d disk model servers and %d mounts while the job ran, want %d", pr.mode, pr.servers, pr.mounts, pr.want)
		}
		if _, err := os.Stat("/sys/fs/cgroup/cpu"); err == nil && pr.cpu < pr.servers {
			t.Errorf("%s: %d servers, %d in a v1 cpu cgroup", pr.mode, pr.servers, pr.cpu)
		}
		if len(pr.bad) > 0 {
			t.Errorf("%s: disk model server in the node's CPU cgroup: %v", pr.mode, pr.bad)
		}
		if len(pr.calib) > 0 {
			t.Errorf("%s: calibration files left in the scratch directory: %v", pr.mode, pr.calib)
		}
	}
}

// fuseType is the disk model's mounts' type in mountinfo.
const fuseType = "fuse.vmux-disk"

// waitJob waits for fio to run in node slow of experiment name.
func waitJob(name string, within time.Duration) bool {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, pid := range testutil.ProcessesNamed("fio") {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
			if strings.Contains(string(b), ":/vmux/"+name+"/slow\n") {
				return true
			}
		}
	}
	return false
}

// probe looks at the running experiment name from the host: its disk
// model servers, whether any is in its node's CPU cgroup instead of
// vmux/<name>/_disk-slow (the node's quota would starve it:
// docs/design/cast.md), and calibration files in the run's scratch
// directory (made under scratch).
func probe(name, scratch string) diskProbe {
	var pr diskProbe
	servers := testutil.ProcessesNamed(reexec.Argv0(diskmodel.Role))
	pr.servers = len(servers)
	pr.mounts = len(testutil.MountsOfType(fuseType))
	for _, pid := range servers {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			// "N:cpu:/vmux/<name>/_disk-slow" (cpu and cpuacct, apart
			// or together). A cgroup v2 host has one directory for
			// every controller and the servers stay in the node's
			// (docs/design/cast.md): this checks v1 hosts.
			f := strings.SplitN(line, ":", 3)
			if len(f) != 3 {
				continue
			}
			switch f[1] {
			case "cpu", "cpuacct", "cpu,cpuacct", "cpuacct,cpu":
				pr.cpu++
				if !strings.HasSuffix(f[2], "/"+name+"/_disk-slow") {
					pr.bad = append(pr.bad, strconv.Itoa(pid)+": "+line)
				}
			}
		}
	}
	pr.calib, _ = filepath.Glob(filepath.Join(scratch, "*", ".vmux-disk-calibrate-*"))
	return pr
}
