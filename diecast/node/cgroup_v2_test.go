package node

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// unifiedRoot is where this project's hosts mount the (controller-less)
// cgroup v2 hierarchy next to v1.
const unifiedRoot = "/sys/fs/cgroup/unified"

// TestCgroupV2Live exercises the v2 backend on the real unified hierarchy.
// Here it has no cpu, memory or io controller (they are bound to v1), so
// newV2 must fail cleanly; membership, CPU usage (cpu.stat exists in every
// v2 cgroup) and removal work without controllers and are checked live.
func TestCgroupV2Live(t *testing.T) {
	testutil.MustRoot(t)
	if ok, _ := isV2Mount(unifiedRoot); !ok {
		t.Skip("no cgroup v2 mount at " + unifiedRoot)
	}
	exp := "v2t" + time.Now().Format("150405.000000")
	exp = strings.ReplaceAll(exp, ".", "")
	have, _ := haveV2(unifiedRoot)
	cg, err := newV2(unifiedRoot, exp, "n")
	if have {
		if err != nil {
			t.Fatalf("newV2 with controllers: %v", err)
		}
	} else {
		if err == nil {
			t.Fatal("newV2 succeeded on a hierarchy without cpu, memory and io")
		}
		if left := testutil.CgroupDirsNamed("vmux/" + exp); len(left) > 0 {
			t.Errorf("failed newV2 left %v", left)
		}
		dir := filepath.Join(unifiedRoot, cgroupTop, exp, "n")
		if err := mkdirCgroup(dir); err != nil {
			t.Fatal(err)
		}
		cg = &cgroupV2{dir: dir}
	}
	busy := exec.Command("sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer busy.Wait()
	defer busy.Process.Kill()
	if err := cg.Add(busy.Process.Pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	used, err := cg.CPUUsage()
	if err != nil || used <= 0 {
		t.Errorf("v2 cpu usage %v, %v: want > 0 for a busy process", used, err)
	}
	// Destroy kills what is inside and removes the directories.
	if err := cg.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := busy.Wait(); err == nil {
		t.Error("busy process survived Destroy")
	}
	for _, p := range cg.Paths() {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists", p)
		}
	}
	if left := testutil.CgroupDirsNamed("vmux/" + exp); len(left) > 0 {
		t.Errorf("left %v", left)
	}
}
