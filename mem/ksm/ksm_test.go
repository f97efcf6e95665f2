package ksm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
)

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestTuneRestore(t *testing.T) {
	testutil.MustRoot(t)
	if _, err := os.Stat(Dir); err != nil {
		if testutil.InCI() {
			t.Fatalf("no KSM under CI: %v", err)
		}
		t.Skipf("no KSM: %v", err)
	}
	oldScan, oldSleep := read(t, "pages_to_scan"), read(t, "sleep_millisecs")
	newScan := "1234"
	if oldScan == newScan {
		newScan = "1235"
	}
	s, err := Tune(map[string]string{"pages_to_scan": newScan, "sleep_millisecs": "77"})
	if err != nil {
		s.Restore()
		t.Fatal(err)
	}
	if got := read(t, "pages_to_scan"); got != newScan {
		t.Errorf("pages_to_scan %s, want %s", got, newScan)
	}
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if a, b := read(t, "pages_to_scan"), read(t, "sleep_millisecs"); a != oldScan || b != oldSleep {
		t.Fatalf("restored pages_to_scan %s sleep_millisecs %s, want %s %s", a, b, oldScan, oldSleep)
	}
	if err := s.Restore(); err != nil { // idempotent
		t.Fatal(err)
	}
	// A bad value fails and still restores what was changed before it.
	s, err = Tune(map[string]string{"pages_to_scan": "999", "sleep_millisecs": "not-a-number"})
	if err == nil {
		t.Fatal("bad value accepted")
	}
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	if a := read(t, "pages_to_scan"); a != oldScan {
		t.Fatalf("pages_to_scan %s after a failed Tune, want %s", a, oldScan)
	}
}

func TestReadAndMergeAny(t *testing.T) {
	testutil.MustRoot(t)
	if _, err := Read(); err != nil {
		t.Fatal(err)
	}
	on, err := MergeAny(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if on {
		t.Fatal("test process already marked mergeable")
	}
	// The mark is per mm: set it, see it, clear it.
	if err := linux.SetMemoryMerge(true); err != nil {
		t.Fatal(err)
	}
	defer linux.SetMemoryMerge(false)
	if on, _ := MergeAny(os.Getpid()); !on {
		t.Fatal("PR_SET_MEMORY_MERGE not visible in ksm_stat")
	}
	if on, _ := linux.GetMemoryMerge(); !on {
		t.Fatal("PR_GET_MEMORY_MERGE says off")
	}
}
