package netd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/diskmodel"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/reexec"
)

// diskClockSpec: one dilated node with the disk latency model.
const diskClockSpec = `name: %s
tdf: 4
nodes: {a: {disk: {latency_model: true}}}
`

// TestDiskModelFollowsPause: a dilated node's disk model takes its time
// from the experiment's clock: its server is given the clock, and an
// O_DIRECT read in the node's writable directory begun while the
// experiment is paused completes only after the resume, where the same
// command reading the node's private /tmp (no model) completes within the
// pause.
func TestDiskModelFollowsPause(t *testing.T) {
	testutil.MustHaveCommand(t, "dd")
	work := filepath.Join(t.TempDir(), "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	st := upWith(t, diskClockSpec, UpOptions{Exe: fastDaemon(t), Dilate: true, Writable: []string{work}})
	servers := testutil.ProcessesNamed(reexec.Argv0(diskmodel.Role))
	if len(servers) != 1 {
		t.Fatalf("disk model servers %v, want 1", servers)
	}
	cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(servers[0]), "cmdline"))
	if args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"); args[len(args)-1] != "clock" {
		t.Errorf("disk model server %q: not given the experiment's clock", args)
	}
	data := filepath.Join(work, "data")
	if _, e, es := execIn(t, st, "a", "dd", "if=/dev/zero", "of="+data, "bs=64k", "count=16", "oflag=direct"); es.Code != 0 {
		t.Fatalf("dd write: %+v %s", es, e)
	}
	if _, e, es := execIn(t, st, "a", "dd", "if=/dev/zero", "of=/tmp/data", "bs=64k", "count=16"); es.Code != 0 {
		t.Fatalf("dd write /tmp: %+v %s", es, e)
	}
	askClock(t, st.Name, clock.Request{Op: "pause"})
	paused := true
	defer func() {
		if paused {
			askClock(t, st.Name, clock.Request{Op: "resume"})
		}
	}()
	read := func(path string, flag ...string) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, e, es, err := tryExec(t, st, "a", append([]string{"dd", "if=" + path, "of=/dev/null", "bs=4k", "count=1"}, flag...)...)
			if err == nil && es.Code != 0 {
				err = &execFailed{es.Code, e}
			}
			done <- err
		}()
		return done
	}
	select {
	case err := <-read("/tmp/data"):
		if err != nil {
			t.Fatalf("read /tmp in the pause: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read of the node's /tmp did not complete in the pause: the pause blocks more than the disk model")
	}
	model := read(data, "iflag=direct")
	select {
	case err := <-model:
		t.Fatalf("a read through the disk model completed in the pause (%v)", err)
	case <-time.After(time.Second):
	}
	resumed := time.Now()
	askClock(t, st.Name, clock.Request{Op: "resume"})
	paused = false
	select {
	case err := <-model:
		if err != nil {
			t.Fatalf("read through the model: %v", err)
		}
		t.Logf("the read held by the pause completed %v after the resume", time.Since(resumed))
	case <-time.After(5 * time.Second):
		t.Fatal("the read held by the pause did not complete after the resume")
	}
}

type execFailed struct {
	code   int
	stderr string
}

func (e *execFailed) Error() string { return "exit " + strconv.Itoa(e.code) + ": " + e.stderr }
