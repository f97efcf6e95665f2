package netd

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/dilate/conformance"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

// timersSpec: two nodes at tdf 1 (the test changes k at run time).
const timersSpec = `name: %s
nodes: {a: {}, b: {}}
links:
  - {ends: [a, b], latency: 1ms}
`

// bgExec runs argv in node n with stdin from (a copy of) the pipe gate and
// stdout on a file the test reads while it runs; wait returns its exit
// status.
func bgExec(t *testing.T, st *State, n, out string, gate *os.File, argv ...string) (wait func() node.ExitStatus) {
	t.Helper()
	ns, err := st.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Dup(int(gate.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(fd)
	in := os.NewFile(uintptr(fd), "gate")
	done := make(chan node.ExitStatus, 1)
	go func() {
		defer f.Close()
		defer in.Close()
		es, err := node.Exec(n, ns.Socket, node.ExecOptions{Argv: argv, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			Stdin: in, Stdout: f, Stderr: os.Stderr})
		if err != nil {
			t.Errorf("exec %v in %s: %v", argv, n, err)
		}
		done <- es
	}()
	return func() node.ExitStatus { return <-done }
}

// TestExperimentTimersAcrossClockChanges: every kind of wait of the
// conformance suite, blocked in two nodes at once, follows an
// experiment-wide change of k (1 -> 10) and an experiment-wide pause: none
// ends early in virtual time, and each takes the real time the change
// makes of the rest of its 100 ms.
func TestExperimentTimersAcrossClockChanges(t *testing.T) {
	py := testutil.MustHaveCommand(t, "python3")
	if real, err := filepath.EvalSymlinks(py); err == nil {
		py = real
	}
	for _, change := range []struct {
		name string
		// apply makes the change and returns the bounds of the real time
		// it adds beyond wantReal (a pause lasts from some instant of
		// its request to some instant of the resume's: measured).
		apply    func(name string) (lo, hi time.Duration)
		wantReal func(before time.Duration) time.Duration
	}{
		{"k-1-to-10", func(name string) (time.Duration, time.Duration) {
			ask(t, name, clock.Request{Op: "set", TDF: "10"})
			return 0, 0
		}, func(before time.Duration) time.Duration { return before + (100*time.Millisecond-before)*10 }},
		{"pause-200ms", func(name string) (time.Duration, time.Duration) {
			t0 := time.Now()
			ask(t, name, clock.Request{Op: "pause"})
			t1 := time.Now()
			time.Sleep(200 * time.Millisecond)
			t2 := time.Now()
			ask(t, name, clock.Request{Op: "resume"})
			t3 := time.Now()
			t.Logf("pause answered in %v, resume in %v", t1.Sub(t0), t3.Sub(t2))
			return t2.Sub(t1), t3.Sub(t0)
		}, func(time.Duration) time.Duration { return 100 * time.Millisecond }},
	} {
		t.Run(change.name, func(t *testing.T) {
			for attempt := 1; ; attempt++ {
				if timersRound(t, py, change.apply, change.wantReal) {
					return
				}
				if attempt == 3 {
					t.Fatal("in 3 attempts some wait had ended before the change (host load)")
				}
			}
		})
	}
}

func ask(t *testing.T, name string, req clock.Request) {
	t.Helper()
	if _, err := clock.Ask(name, req); err != nil {
		t.Fatalf("clock %s: %v", req.Op, err)
	}
}

// timersRound runs every wait in both nodes of a fresh experiment,
// applies change once all are blocked, and checks them; it returns false
// (having checked that none ended early) when a wait ended before the
// change was applied.
func timersRound(t *testing.T, py string, apply func(string) (time.Duration, time.Duration), wantReal func(time.Duration) time.Duration) bool {
	st := upWith(t, timersSpec, UpOptions{Exe: fastDaemon(t), Dilate: true})
	dir := t.TempDir()
	type run struct {
		name string
		out  string
		wait func() node.ExitStatus
	}
	var runs []run
	progs := conformance.WaitPrograms()
	names := make([]string, 0, len(progs))
	for n := range progs {
		names = append(names, n)
	}
	sort.Strings(names)
	// Every program waits at its gate (a line on stdin) once loaded, so
	// that all start their waits together.
	gate, open, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	for _, nd := range []string{"a", "b"} {
		for _, w := range names {
			out := filepath.Join(dir, nd+"-"+w)
			runs = append(runs, run{nd + "/" + w, out, bgExec(t, st, nd, out, gate, py, "-c", progs[w])})
		}
	}
	gate.Close() // every exec has its copy
	outputs := func() []conformance.WaitOutput {
		ws := make([]conformance.WaitOutput, len(runs))
		for i, r := range runs {
			b, _ := os.ReadFile(r.out)
			ws[i] = conformance.ParseWait(b)
		}
		return ws
	}
	waitAll := func(what string, done func(conformance.WaitOutput) bool) []conformance.WaitOutput {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			ws, n := outputs(), 0
			for _, w := range ws {
				if done(w) {
					n++
				}
			}
			if n == len(runs) {
				return ws
			}
			if time.Now().After(deadline) {
				logDaemon(t, st)
				t.Fatalf("%d of %d programs %s after 30 s", n, len(runs), what)
			}
		}
	}
	waitAll("loaded", func(w conformance.WaitOutput) bool { return w.Loaded })
	open.Close() // end of file at every gate: all waits start
	starts := make([]int64, len(runs))
	for i, w := range waitAll("ready", func(w conformance.WaitOutput) bool { return w.Ready }) {
		starts[i] = w.Start
	}
	latest := starts[0]
	for _, s := range starts {
		latest = max(latest, s)
	}
	mono := func() int64 {
		n, err := linux.ClockGettime(int32(vclock.Monotonic))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// At k = 1 the programs' monotonic is the real one.
	time.Sleep(max(0, time.Duration(latest+int64(20*time.Millisecond)-mono())))
	at := mono()
	ended := false
	for _, w := range outputs() {
		ended = ended || w.Ended
	}
	lo, hi := apply(st.Name)
	var mu sync.Mutex
	ok := true
	for i, r := range runs {
		es := r.wait()
		end := mono()
		b, _ := os.ReadFile(r.out)
		w := conformance.ParseWait(b)
		if es.Code != 0 || !w.Ended {
			t.Errorf("%s: %+v, output %q", r.name, es, b)
			continue
		}
		late := w.Late
		if late < 0 {
			t.Errorf("%s: ended %v early in virtual time", r.name, time.Duration(-late))
		}
		before := time.Duration(at - starts[i])
		if ended || before >= 95*time.Millisecond {
			mu.Lock()
			ok = false
			mu.Unlock()
			continue
		}
		want := wantReal(before)
		real := time.Duration(end - starts[i])
		t.Logf("%s: change %v into the wait, woke %v late (virtual), %v real (want about %v + %v..%v)", r.name, before, time.Duration(late), real, want, lo, hi)
		// The waits of the other programs end at about the same time
		// and this one is reaped in turn: allow their exits too.
		if real < (want+lo)*9/10 || real > (want+hi)*3/2+time.Duration(len(runs))*5*time.Millisecond {
			t.Errorf("%s: took %v real, want about %v + %v..%v", r.name, real, want, lo, hi)
		}
	}
	if !ok {
		t.Logf("a wait ended before the change; repeating (%s)", fmt.Sprint(ended))
	}
	return ok
}

// logDaemon logs what the experiment's daemon logged above debug level.
func logDaemon(t *testing.T, st *State) {
	b, err := os.ReadFile(st.LogFile)
	if err != nil {
		t.Logf("daemon log: %v", err)
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "level=DEBUG") && !strings.Contains(l, "level=INFO") && l != "" {
			t.Logf("daemon: %s", l)
		}
	}
}
