package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/mem/ksm"
)

var (
	vmuxOnce sync.Once
	vmuxBin  string
	vmuxErr  error
)

// buildVmux builds cmd/vmux once for the tests that kill it.
func buildVmux(t *testing.T) string {
	t.Helper()
	gocmd := testutil.MustHaveCommand(t, "go")
	vmuxOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vmux-cli-test")
		if err != nil {
			vmuxErr = err
			return
		}
		vmuxBin = filepath.Join(dir, "vmux")
		if out, err := exec.Command(gocmd, "build", "-o", vmuxBin, "../../cmd/vmux").CombinedOutput(); err != nil {
			vmuxErr = fmt.Errorf("build vmux: %v\n%s", err, out)
		}
	})
	if vmuxErr != nil {
		t.Fatal(vmuxErr)
	}
	return vmuxBin
}

var ksmKnobs = []string{"run", "pages_to_scan", "sleep_millisecs"}

func readKSM(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, k := range ksmKnobs {
		b, err := os.ReadFile(filepath.Join(ksm.Dir, k))
		if err != nil {
			t.Fatal(err)
		}
		m[k] = strings.TrimSpace(string(b))
	}
	return m
}

// restoreKSM puts the knobs back whatever the test did.
func restoreKSM(t *testing.T, orig map[string]string) {
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(ksm.Dir, "run"), []byte("0"), 0)
		for _, k := range []string{"pages_to_scan", "sleep_millisecs", "run"} {
			os.WriteFile(filepath.Join(ksm.Dir, k), []byte(orig[k]), 0)
		}
	})
}

// children lists the processes whose parent is pid, with their argv[0].
func children(pid int) map[int]string {
	out := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			out[c], _, _ = strings.Cut(string(cmd), "\x00")
		}
	}
	return out
}

// TestMemDemoKilledLeavesNothing reproduces issue 10, item 7: kill -9 of
// `vmux mem demo --ksm` while KSM scans left KSM at pages_to_scan 10000,
// sleep 0 (a core burnt) until some later vmux restored it. Now the
// demo's guard restores KSM and kills every workload within moments.
func TestMemDemoKilledLeavesNothing(t *testing.T) {
	testutil.MustRoot(t)
	testutil.MustHaveCommand(t, "python3")
	testutil.MustHaveCommand(t, "perl")
	if _, err := os.Stat(ksm.Dir); err != nil {
		t.Fatalf("no KSM: %v", err)
	}
	vmux := buildVmux(t)
	orig := readKSM(t)
	restoreKSM(t, orig)
	cmd := exec.Command(vmux, "mem", "demo", "--ksm", "--only", "python3,perl", "--instances", "2",
		"--settle", "200ms", "--detector", "none")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	tuned := false
	deadline := time.Now().Add(60 * time.Second)
	for sc.Scan() && time.Now().Before(deadline) {
		if strings.HasPrefix(sc.Text(), "KSM baseline") {
			tuned = true
			break
		}
	}
	if !tuned {
		t.Fatal("the demo never reached its KSM baseline")
	}
	// The demo tunes KSM right after that line: wait until it has.
	for time.Now().Before(deadline) && readKSM(t)["pages_to_scan"] != "10000" {
		time.Sleep(5 * time.Millisecond)
	}
	kids := children(cmd.Process.Pid)
	var workloads []int
	for pid, argv0 := range kids {
		if !strings.HasPrefix(argv0, "vmux-") { // not the guard
			workloads = append(workloads, pid)
		}
	}
	if len(workloads) != 4 || readKSM(t)["run"] != "1" {
		t.Fatalf("before the kill: children %v, KSM %v", kids, readKSM(t))
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	var now map[string]string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		now = readKSM(t)
		if now["run"] == orig["run"] && now["pages_to_scan"] == orig["pages_to_scan"] && len(alive(workloads)) == 0 {
			break
		}
	}
	for _, k := range ksmKnobs {
		if now[k] != orig[k] {
			t.Errorf("KSM %s = %s after kill -9 of the demo, want %s", k, now[k], orig[k])
		}
	}
	if left := alive(workloads); len(left) > 0 {
		for _, p := range left {
			if !zombie(p) {
				t.Errorf("workload %d still running after kill -9 of the demo", p)
			}
		}
	}
	if _, err := os.Stat(ksm.Journal); err == nil {
		t.Errorf("KSM journal %s left", ksm.Journal)
	}
}

// TestAnyCommandRestoresKSM: when nothing restored KSM after a vmux was
// killed (its guard killed too), the next vmux command of any kind does.
func TestAnyCommandRestoresKSM(t *testing.T) {
	testutil.MustRoot(t)
	if _, err := os.Stat(ksm.Dir); err != nil {
		t.Fatalf("no KSM: %v", err)
	}
	vmux := buildVmux(t)
	orig := readKSM(t)
	restoreKSM(t, orig)
	if _, err := os.Stat(ksm.Journal); err == nil {
		t.Fatalf("a KSM journal is already there: %s", ksm.Journal)
	}
	// A dead owner's journal, as a vmux killed after tuning leaves it.
	dead := exec.Command("true")
	dead.Run()
	b, _ := json.Marshal(map[string]any{"pid": dead.Process.Pid, "start": "1", "names": []string{"pages_to_scan"},
		"values": map[string]string{"pages_to_scan": orig["pages_to_scan"]}})
	os.MkdirAll(filepath.Dir(ksm.Journal), 0o755)
	if err := os.WriteFile(ksm.Journal, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(ksm.Journal) })
	os.WriteFile(filepath.Join(ksm.Dir, "pages_to_scan"), []byte("4321"), 0)
	if out, err := exec.Command(vmux, "clock", "list").CombinedOutput(); err != nil {
		t.Fatalf("vmux clock list: %v\n%s", err, out)
	}
	if got := readKSM(t)["pages_to_scan"]; got != orig["pages_to_scan"] {
		t.Errorf("pages_to_scan %s after the next vmux command, want %s", got, orig["pages_to_scan"])
	}
	if _, err := os.Stat(ksm.Journal); err == nil {
		t.Errorf("journal left")
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}
