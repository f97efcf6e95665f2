package netd

import (
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/internal/testutil"
)

// up brings up spec (a YAML template with %s for the experiment name) under
// a unique name and registers down plus a leak check.
func up(t testing.TB, specTmpl string) *State {
	t.Helper()
	return upWith(t, specTmpl, UpOptions{})
}

// upFast is up with a daemon built without -race (see fastDaemon).
func upFast(t testing.TB, specTmpl string) *State {
	t.Helper()
	return upWith(t, specTmpl, UpOptions{Exe: fastDaemon(t)})
}

var (
	fastOnce sync.Once
	fastExe  string
	fastErr  error
)

// fastDaemon builds ./internal/testdaemon once, without the race detector:
// fidelity is a property of the emulator at production speed, which a
// race-instrumented daemon (the test binary) does not have.
func fastDaemon(t testing.TB) string {
	t.Helper()
	fastOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			fastErr = fmt.Errorf("build testdaemon: the go command is not in PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "vmux-netd-test")
		if err != nil {
			fastErr = err
			return
		}
		fastExe = filepath.Join(dir, "testdaemon")
		out, err := exec.Command(goBin, "build", "-o", fastExe, "./internal/testdaemon").CombinedOutput()
		if err != nil {
			fastErr = fmt.Errorf("build testdaemon: %v\n%s", err, out)
		}
	})
	if fastErr != nil {
		t.Fatal(fastErr)
	}
	return fastExe
}

// upSeq numbers the experiments a test process brings up.
var upSeq atomic.Int64

func upWith(t testing.TB, specTmpl string, o UpOptions) *State {
	t.Helper()
	testutil.MustRoot(t)
	name := fmt.Sprintf("t%d-", os.Getpid()%100000)
	for _, r := range strings.ToLower(t.Name()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			name += string(r)
		}
	}
	// Names are unique in the test process (a test may bring up several
	// experiments, a subtest's name is long): a counter, and a hash of
	// what does not fit.
	name += fmt.Sprint(upSeq.Add(1))
	if len(name) > 32 {
		h := fnv.New32a()
		h.Write([]byte(name))
		name = fmt.Sprintf("%s%08x", name[:24], h.Sum32())
	}
	p := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(specTmpl, name)), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Up(p, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(name, 3*time.Second); err != nil {
			t.Errorf("down: %v", err)
		}
		checkGone(t, st)
	})
	return st
}

// checkGone asserts that nothing of the experiment survives.
func checkGone(t testing.TB, st *State) {
	t.Helper()
	l := testutil.Leaks{Pids: []int{st.Daemon.Pid}, Paths: []string{Dir(st.Name)}}
	for _, n := range st.Nodes {
		l.Pids = append(l.Pids, n.Pid)
		l.NetnsInodes = append(l.NetnsInodes, n.NetnsInode)
		l.Paths = append(l.Paths, n.Cgroups...)
	}
	testutil.CheckNoLeaks(t, l)
	if left := testutil.CgroupDirsNamed("vmux/" + st.Name); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if left := testutil.InterfacesNamed("vmux"); len(left) > 0 {
		t.Errorf("interfaces in the host namespace: %v", left)
	}
}

// execIn runs argv in node n and returns its stdout, stderr and status.
func execIn(t testing.TB, st *State, n string, argv ...string) (string, string, node.ExitStatus) {
	t.Helper()
	o, e, es, err := tryExec(t, st, n, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return o, e, es
}

// mustExec runs argv in node n and fails the test unless it exits 0; it
// returns its stdout.
func mustExec(t testing.TB, st *State, n string, argv ...string) string {
	t.Helper()
	out, errs, es := execIn(t, st, n, argv...)
	if es.Code != 0 {
		t.Fatalf("%q in %s: %+v\n%s%s", argv, n, es, out, errs)
	}
	return out
}

// eventuallyExec retries argv in node n every 100 ms until it exits 0 (a
// server starting), for at most within; it returns its stdout.
func eventuallyExec(t testing.TB, st *State, within time.Duration, n string, argv ...string) string {
	t.Helper()
	var out, errs string
	var es node.ExitStatus
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out, errs, es = execIn(t, st, n, argv...); es.Code == 0 {
			return out
		}
	}
	t.Fatalf("%q in %s never succeeded: %+v\n%s%s", argv, n, es, out, errs)
	return ""
}

// tryExec is execIn for goroutines other than the test's: it returns the
// error instead of failing the test.
func tryExec(t testing.TB, st *State, n string, argv ...string) (string, string, node.ExitStatus, error) {
	ns, err := st.Node(n)
	if err != nil {
		return "", "", node.ExitStatus{}, err
	}
	dir, err := os.MkdirTemp("", "vmux-exec")
	if err != nil {
		return "", "", node.ExitStatus{}, err
	}
	defer os.RemoveAll(dir)
	out, _ := os.Create(filepath.Join(dir, "out"))
	errf, _ := os.Create(filepath.Join(dir, "err"))
	in, _ := os.Open(os.DevNull)
	defer out.Close()
	defer errf.Close()
	defer in.Close()
	es, err := node.Exec(n, ns.Socket, node.ExecOptions{Argv: argv, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Stdin: in, Stdout: out, Stderr: errf})
	if err != nil {
		return "", "", es, fmt.Errorf("exec %q in %s: %w", argv, n, err)
	}
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return string(o), string(e), es, nil
}

// dumpDaemon logs what the experiment's daemon is doing, for a test that
// found it stuck: each thread's state, kernel wait channel and system
// call, then every goroutine's stack (SIGQUIT makes the Go runtime write
// them to the daemon's log, and the daemon exit).
func dumpDaemon(t testing.TB, st *State) {
	t.Helper()
	pid := st.Daemon.Pid
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		dir := fmt.Sprintf("/proc/%d/task/%s/", pid, task.Name())
		stat, _ := os.ReadFile(dir + "stat")
		wchan, _ := os.ReadFile(dir + "wchan")
		sc, _ := os.ReadFile(dir + "syscall")
		t.Logf("daemon thread %s: %s | wchan %s | syscall %s", task.Name(), strings.TrimSpace(string(stat)), wchan, strings.TrimSpace(string(sc)))
	}
	logf := st.LogFile
	before, _ := os.ReadFile(logf)
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	time.Sleep(2 * time.Second)
	after, _ := os.ReadFile(logf)
	if len(after) > len(before) {
		t.Logf("daemon goroutines:\n%s", after[len(before):])
	}
}
