package cast

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// byName indexes samples by metric (last value) and counts them.
func byName(s []Sample) (map[string]float64, map[string]int) {
	v, n := map[string]float64{}, map[string]int{}
	for _, x := range s {
		v[x.Metric] = x.Value
		n[x.Metric]++
	}
	return v, n
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// The testdata files are real outputs of iperf3 3.12, redis-benchmark 7.0,
// wrk 4.1 and pgbench 15 on this machine's loopback.
func TestReadIperf3(t *testing.T) {
	s, err := Read("iperf3", Output{Stdout: readFile(t, "iperf3.json")})
	if err != nil {
		t.Fatal(err)
	}
	v, n := byName(s)
	if !near(v["goodput"], 20001669649.2305) || v["retransmits"] != 24 || n["interval_goodput"] != 4 {
		t.Errorf("iperf3: %v %v", v, n)
	}
	if _, err := Read("iperf3", Output{Stdout: []byte(`{"error": "unable to connect to server: Connection refused"}`)}); err == nil {
		t.Error("iperf3 error not reported")
	}
	if _, err := Read("iperf3", Output{Stdout: []byte("not json")}); !errors.Is(err, ErrNoMetrics) {
		t.Errorf("garbage: %v", err)
	}
}

func TestReadRedisBenchmark(t *testing.T) {
	s, err := Read("redis-benchmark", Output{Stdout: readFile(t, "redis-benchmark.csv")})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := byName(s)
	if v["SET.rps"] != 100000 || v["GET.rps"] != 51282.05 || v["GET.p50_ms"] != 0.071 || v["SET.p99_ms"] != 0.047 || v["SET.max_ms"] != 4.727 {
		t.Errorf("redis-benchmark: %v", v)
	}
	old := `"PING_INLINE","51282.05"` + "\n" + `"LPUSH (needed to benchmark LPOP)","48780.49"` + "\n"
	s, err = Read("redis-benchmark", Output{Stdout: []byte(old)})
	v, _ = byName(s)
	if err != nil || v["PING_INLINE.rps"] != 51282.05 || v["LPUSH.rps"] != 48780.49 || len(v) != 2 {
		t.Errorf("old format: %v %v", v, err)
	}
}

func TestReadWrk(t *testing.T) {
	s, err := Read("wrk", Output{Stdout: readFile(t, "wrk.txt")})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := byName(s)
	if v["requests_per_s"] != 67824.96 || !near(v["latency_p50_ms"], 0.045) || !near(v["latency_p99_ms"], 0.434) ||
		!near(v["latency_mean_ms"], 0.06123) || v["errors"] != 0 {
		t.Errorf("wrk: %v", v)
	}
	withErrs := string(readFile(t, "wrk.txt")) + "\n  Socket errors: connect 1, read 2, write 0, timeout 12\n  Non-2xx or 3xx responses: 5\n"
	s, _ = Read("wrk", Output{Stdout: []byte(withErrs)})
	if v, _ := byName(s); v["errors"] != 20 {
		t.Errorf("wrk errors = %v, want 20", v["errors"])
	}
}

func TestReadPgbench(t *testing.T) {
	dir := t.TempDir()
	log := "0 1 812 0 1796283839 123456\n0 2 1500 0 1796283839 125000\n1 1 700 0 1796283839 126000\n"
	os.WriteFile(filepath.Join(dir, "pgbench_log.4242"), []byte(log), 0o600)
	s, err := Read("pgbench", Output{Stdout: readFile(t, "pgbench.txt"), WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	v, n := byName(s)
	if !near(v["tps"], 2427.647245) || v["latency_avg_ms"] != 0.821 || v["failed"] != 0 || n["progress_tps"] != 3 ||
		v["progress_latency_ms"] != 0.745 || n["latency_ms"] != 3 || v["latency_ms"] != 0.7 {
		t.Errorf("pgbench: %v %v", v, n)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "pgbench_log.*")); len(left) != 0 {
		t.Errorf("logs not removed: %v", left)
	}
}

func TestReadJSONLines(t *testing.T) {
	out := "starting\n{\"metric\": \"election\", \"value\": 312.5, \"unit\": \"ms\"}\n{\"other\": 1}\n{\"metric\":\"x\",\"value\":2}\n{broken\n"
	s, err := Read("json", Output{Stdout: []byte(out)})
	if err != nil || len(s) != 2 || s[0] != (Sample{"election", 312.5, "ms"}) || s[1] != (Sample{"x", 2, ""}) {
		t.Errorf("json lines: %v %v", s, err)
	}
	if _, err := Read("json", Output{Stdout: []byte(`{"metric":"a b<script>","value":1}`)}); err == nil {
		t.Error("bad metric name accepted")
	}
	if s, err := Read("json", Output{Stdout: []byte("nothing to report\n")}); err != nil || len(s) != 0 {
		t.Errorf("no metric lines: %v %v", s, err)
	}
	if _, err := Read("nope", Output{}); !errors.Is(err, ErrUnknownReader) {
		t.Errorf("unknown reader: %v", err)
	}
}
