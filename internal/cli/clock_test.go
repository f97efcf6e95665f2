package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

func runClockCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestClockCLI drives `vmux clock` against a real clock served by this
// process over its control socket, addressed by name and by owner PID.
func TestClockCLI(t *testing.T) {
	testutil.MustRoot(t)
	run := "clitest-" + strconv.Itoa(os.Getpid())
	clk, err := clock.New(run, vclock.Config{TDF: vclock.TDF{Num: 10, Den: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer clk.Close()
	srv, err := clock.Serve(clk, clock.ServeOptions{Name: run, Kind: clock.KindRun})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	load := func() vclock.Params {
		p, err := clk.Load()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	out, err := runClockCLI(t, "clock", "set", run, "--tdf", "2.5")
	if err != nil {
		t.Fatalf("set: %v\n%s", err, out)
	}
	if p := load(); p.TDF != (vclock.TDF{Num: 5, Den: 2}) || !strings.Contains(out, "tdf                5/2") {
		t.Errorf("after set 2.5: %+v\n%s", p.TDF, out)
	}
	if out, err := runClockCLI(t, "clock", "pause", strconv.Itoa(os.Getpid())); err != nil || !load().Paused || !strings.Contains(out, "paused") {
		t.Errorf("pause by pid: %v\n%s", err, out)
	}
	if out, err := runClockCLI(t, "clock", "resume", run, "--json"); err != nil || load().Paused || !strings.Contains(out, `"paused": false`) {
		t.Errorf("resume --json: %v\n%s", err, out)
	}
	out, err = runClockCLI(t, "clock", "status", run, "--json")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var st clock.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Pid != os.Getpid() || st.Name != run || st.Kind != clock.KindRun || st.TDF != "5/2" || st.Paused {
		t.Errorf("status --json: %v %+v\n%s", err, st, out)
	}
	if out, err := runClockCLI(t, "clock", "show", run); err != nil || !strings.Contains(out, "running") {
		t.Errorf("show (alias of status): %v\n%s", err, out)
	}
	out, err = runClockCLI(t, "clock", "list")
	if err != nil || !strings.Contains(out, run) {
		t.Errorf("list: %v\n%s", err, out)
	}

	// Bad input: clear errors, nothing changed.
	before := load()
	for _, args := range [][]string{
		{"clock", "set", run, "--tdf", "0"},
		{"clock", "set", run, "--tdf", "fast"},
		{"clock", "set", run},
		{"clock", "set", "no-such-run-" + run, "--tdf", "2"},
		{"clock", "pause", "no-such-run-" + run},
	} {
		if out, err := runClockCLI(t, args...); err == nil {
			t.Errorf("%v succeeded:\n%s", args, out)
		}
	}
	if _, err := runClockCLI(t, "clock", "set", run, "--tdf", "-1"); !errors.Is(err, vclock.ErrBadTDF) {
		t.Errorf("--tdf -1: %v, want ErrBadTDF", err)
	}
	if _, err := runClockCLI(t, "clock", "status", "no-such-run-"+run); !errors.Is(err, clock.ErrNoClock) {
		t.Errorf("unknown run: %v, want ErrNoClock", err)
	}
	if after := load(); after != before {
		t.Errorf("bad input changed the clock: %+v -> %+v", before, after)
	}
}
