package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// memRun runs vmux with args in-process and returns stdout, stderr.
func memRun(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// memImage writes an image of similar, identical, text and zero pages with
// a non-page-aligned size.
func memImage(t *testing.T, dir, name string, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 3))
	base := make([]byte, 4096)
	for i := range base {
		base[i] = byte(r.Uint32())
	}
	var b []byte
	for p := 0; p < 256; p++ {
		pg := bytes.Clone(base)
		switch p % 4 {
		case 1:
			pg[r.IntN(4096)]++
		case 2:
			pg = bytes.Repeat([]byte(fmt.Sprintf("record %d;", p)), 4096)[:4096]
		case 3:
			pg = make([]byte, 4096)
		}
		b = append(b, pg...)
	}
	b = append(b, "tail"...)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMemAnalyzeJSON(t *testing.T) {
	dir := t.TempDir()
	a, b := memImage(t, dir, "a.img", 1), memImage(t, dir, "b.img", 1)
	out, _, err := memRun(t, context.Background(), "mem", "analyze", "--json", a, b)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"total_bytes", "stored_bytes", "identical_only_stored_bytes", "pages", "sources", "resident", "savings_ratio"} {
		if _, ok := d[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	pages := d["pages"].(map[string]any)
	// Two files are two domains: nothing is shared across them, but each
	// shares within itself and patches its one-byte variants.
	if pages["shared"].(float64) == 0 || pages["patched"].(float64) == 0 || pages["zero"].(float64) == 0 {
		t.Errorf("pages %v", pages)
	}
	if total := d["total_bytes"].(float64); total != 2*257*4096 {
		t.Errorf("total_bytes %v, want %d", total, 2*257*4096)
	}
	if p := d["sources"].([]any)[0].(map[string]any)["padded_bytes"]; p != float64(4096-4) {
		t.Errorf("padded_bytes %v, want %d", p, 4096-4)
	}
	cross, _, err := memRun(t, context.Background(), "mem", "analyze", "--json", "--cross-domain", a, b)
	if err != nil {
		t.Fatal(err)
	}
	var dc map[string]any
	json.Unmarshal([]byte(cross), &dc)
	if dc["cross_domain"] != true || dc["pages"].(map[string]any)["shared"].(float64) <= pages["shared"].(float64) {
		t.Errorf("identical files: cross-domain shares %v pages, within domains %v", dc["pages"], pages)
	}
	// The table names every source and the total.
	table, _, err := memRun(t, context.Background(), "mem", "analyze", "--detector", "hsd21", "--codec", "zstd", a, b)
	if err != nil || !strings.Contains(table, "TOTAL") || !strings.Contains(table, "KSM-equivalent") || !strings.Contains(table, "a.img") ||
		!strings.Contains(table, "Padded: "+a) {
		t.Fatalf("table (%v):\n%s", err, table)
	}
}

func TestMemBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"mem", "analyze", filepath.Join(dir, "missing")},
		{"mem", "analyze", "pid:notanumber"},
		{"mem", "analyze", "--detector", "nope", memImage(t, dir, "x", 1)},
		{"mem", "analyze", "--codec", "nope", memImage(t, dir, "y", 1)},
		{"mem", "pack", memImage(t, dir, "z", 1)},
		{"mem", "verify", memImage(t, dir, "notastore", 1)},
		{"mem", "analyze", "pid:999999999"},
	} {
		_, _, err := memRun(t, context.Background(), args...)
		if err == nil || strings.Contains(err.Error(), "panic") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestMemPackUnpackVerifyCat(t *testing.T) {
	dir := t.TempDir()
	a, b := memImage(t, dir, "a.img", 5), memImage(t, dir, "b.img", 6)
	st := filepath.Join(dir, "s.vmx")
	out, _, err := memRun(t, context.Background(), "mem", "pack", "-q", "-o", st, a, b)
	if err != nil || !strings.Contains(out, "wrote "+st) {
		t.Fatalf("pack (%v): %s", err, out)
	}
	out, _, err = memRun(t, context.Background(), "mem", "verify", st)
	if err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("verify (%v): %s", err, out)
	}
	un := filepath.Join(dir, "out")
	if _, _, err := memRun(t, context.Background(), "mem", "unpack", st, "-o", un); err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{a, b} {
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(un, fmt.Sprintf("%02d-%s", i, filepath.Base(p))))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("unpacked %s differs (%v)", p, err)
		}
	}
	want, _ := os.ReadFile(b)
	for _, pg := range []int{0, 1, 2, 3, 101, 256} {
		page, _, err := memRun(t, context.Background(), "mem", "cat", st, "1", fmt.Sprint(pg))
		if err != nil {
			t.Fatal(err)
		}
		w := make([]byte, 4096)
		copy(w, want[pg*4096:])
		if page != string(w) {
			t.Fatalf("cat page %d differs", pg)
		}
	}
	if _, _, err := memRun(t, context.Background(), "mem", "cat", st, "1", "257"); err == nil {
		t.Fatal("cat past the end succeeded")
	}
	// A flipped byte makes verify fail.
	data, _ := os.ReadFile(st)
	data[len(data)/3] ^= 0x40
	os.WriteFile(st, data, 0o600)
	if _, _, err := memRun(t, context.Background(), "mem", "verify", st); err == nil {
		t.Fatal("verify passed a corrupted store")
	}
}

// alive reports which of pids still exist (zombies included).
func alive(pids []int) []int {
	var out []int
	for _, p := range pids {
		if syscall.Kill(p, 0) == nil {
			out = append(out, p)
		}
	}
	return out
}

func TestMemDemoStopsEverything(t *testing.T) {
	testutil.MustRoot(t)
	testutil.MustHaveCommand(t, "redis-server")
	testutil.MustHaveCommand(t, "python3")
	var mu sync.Mutex
	var pids []int
	demoStarted = func(pid int) { mu.Lock(); pids = append(pids, pid); mu.Unlock() }
	defer func() { demoStarted = nil }()

	var out, errb bytes.Buffer
	opts := demoOpts{settle: 100 * time.Millisecond, instances: 2, only: []string{"python3", "redis"}}
	if err := runDemo(context.Background(), &out, &errb, memFlags{detector: "none", codec: "none"}, false, false, opts); err != nil {
		t.Fatalf("demo: %v\n%s", err, errb.String())
	}
	if len(pids) != 4 || !strings.Contains(out.String(), "TOTAL") || !strings.Contains(out.String(), "redis-server") {
		t.Fatalf("%d processes; output:\n%s\n%s", len(pids), out.String(), errb.String())
	}
	if left := alive(pids); len(left) > 0 {
		t.Fatalf("processes left running: %v", left)
	}

	// Cancelled (Ctrl-C) while the processes load: all stopped too.
	pids = nil
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	err := runDemo(ctx, &out, &errb, memFlags{}, false, false, demoOpts{settle: 30 * time.Second, instances: 2, only: []string{"python3", "redis"}})
	if err == nil {
		t.Fatal("cancelled demo returned no error")
	}
	if len(pids) == 0 {
		t.Fatal("no process started before the cancel")
	}
	if left := alive(pids); len(left) > 0 {
		t.Fatalf("processes left running after cancel: %v", left)
	}
}
