package node

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		l  Limits
		ok bool
	}{
		{Limits{}, true},
		{Limits{CPU: 0.5, Memory: 256 << 20, ReadBps: 50e6}, true},
		{Limits{CPU: -1}, false},
		{Limits{CPU: 0.001}, false}, // below the 1 ms minimum quota
		{Limits{Memory: -5}, false},
		{Limits{Memory: 100}, false},
		{Limits{WriteIOPS: -1}, false},
	} {
		err := tc.l.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v: err %v, want ok=%v", tc.l, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: %v does not match ErrBadConfig", tc.l, err)
		}
	}
}

func TestParseStartTime(t *testing.T) {
	// comm with spaces and a ')' inside: split must use the last ')'.
	line := "1234 (a b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10"
	got, err := parseStartTime(line)
	if err != nil || got != 987654 {
		t.Fatalf("parseStartTime = %d, %v; want 987654", got, err)
	}
	if _, err := parseStartTime("garbage"); err == nil {
		t.Fatal("parseStartTime accepted garbage")
	}
}

func TestV2Formats(t *testing.T) {
	if got := v2CPUMax(Limits{CPU: 0.25}); got != "25000 100000" {
		t.Errorf("cpu.max = %q", got)
	}
	if got := v2CPUMax(Limits{}); got != "max 100000" {
		t.Errorf("cpu.max unlimited = %q", got)
	}
	if got := v2IOMax("254:0", Limits{ReadBps: 1, WriteIOPS: 2}); got != "254:0 rbps=1 wiops=2" {
		t.Errorf("io.max = %q", got)
	}
	if got := v2IOMax("254:0", Limits{}); got != "" {
		t.Errorf("io.max without throttles = %q", got)
	}
}

func TestValidName(t *testing.T) {
	for _, s := range []string{"a", "web1", "node-2.x"} {
		if err := ValidName(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "-a", "a/b", "../x", string(make([]byte, 70))} {
		if err := ValidName(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// TestHaveV2 probes real mounts: the v1 cpu hierarchy is not v2, and the
// unified mount here lacks cpu, memory and io, so v1 must be chosen.
func TestHaveV2(t *testing.T) {
	if ok, _ := haveV2("/sys/fs/cgroup/cpu"); ok {
		t.Error("the v1 cpu hierarchy was taken for cgroup v2")
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		b, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
		ok, err := haveV2("/sys/fs/cgroup/unified")
		want := strings.Contains(string(b), "cpu") && strings.Contains(string(b), "memory") && strings.Contains(string(b), "io")
		if err != nil || ok != want {
			t.Errorf("haveV2(unified) = %v, %v with controllers %q", ok, err, b)
		}
	}
}

func TestLaunchers(t *testing.T) {
	if _, err := newLauncher(SupervisedLauncherName, InitSettings{}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("supervised launcher without a supervisor connection: %v", err)
	}
	if _, err := newLauncher("nope", InitSettings{}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("unknown launcher: %v", err)
	}
}
