package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestSweepDemoDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(tmp, fmt.Sprintf("vmux-demo-%d-123", dead.Process.Pid))
	live := filepath.Join(tmp, fmt.Sprintf("vmux-demo-%d-456", os.Getppid()))
	other := filepath.Join(tmp, "vmux-demo-notapid-1")
	for _, d := range []string{stale, live, other} {
		if err := os.MkdirAll(filepath.Join(d, "sock"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sweepDemoDirs()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("dead demo's directory kept: %v", err)
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
}
