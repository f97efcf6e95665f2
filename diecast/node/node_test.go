package node

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// startTestNode starts a node for test t with a unique experiment name and
// registers its teardown plus a leak check.
func startTestNode(t *testing.T, limits Limits) (*Node, string) {
	t.Helper()
	return startTestNodeWith(t, limits, nil)
}

// startTestNodeWith is startTestNode with the configuration adjusted by
// adjust (given the test's directory) before Start.
func startTestNodeWith(t *testing.T, limits Limits, adjust func(c *Config, dir string)) (*Node, string) {
	t.Helper()
	testutil.MustRoot(t)
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n10.9.0.1 alpha\n10.9.0.2 beta\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exp := fmt.Sprintf("t%d", time.Now().UnixNano()%1e9)
	cfg := Config{
		Experiment: exp, Name: "alpha", Limits: limits, HostsFile: hosts,
		Socket: filepath.Join(privateDir(t, dir), "alpha.sock"), Log: os.Stderr,
	}
	if adjust != nil {
		adjust(&cfg, dir)
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := n.State()
	t.Cleanup(func() {
		if err := n.Stop(2 * time.Second); err != nil {
			t.Errorf("stop: %v", err)
		}
		testutil.CheckNoLeaks(t, testutil.Leaks{Pids: []int{st.Pid}, NetnsInodes: []uint64{st.NetnsInode},
			Paths: append(st.Cgroups, st.Socket)})
		if left := testutil.CgroupDirsNamed("vmux/" + exp); len(left) > 0 {
			t.Errorf("cgroups left: %v", left)
		}
	})
	return n, dir
}

// privateDir makes an owner-only directory under dir (t.TempDir follows
// the umask), as exec sockets need.
func privateDir(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "sock")
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// run executes argv in the node and returns stdout, stderr and the status.
func run(t *testing.T, n *Node, argv ...string) (string, string, ExitStatus) {
	t.Helper()
	dir := t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "out"))
	errf, _ := os.Create(filepath.Join(dir, "err"))
	in, _ := os.Open(os.DevNull)
	defer out.Close()
	defer errf.Close()
	defer in.Close()
	st, err := Exec(n.Name(), n.cfg.Socket, ExecOptions{Argv: argv, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Stdin: in, Stdout: out, Stderr: errf})
	if err != nil {
		t.Fatalf("exec %q: %v", argv, err)
	}
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return string(o), string(e), st
}

func TestSandboxNamespaces(t *testing.T) {
	n, _ := startTestNode(t, Limits{})
	if out, _, _ := run(t, n, "hostname"); strings.TrimSpace(out) != "alpha" {
		t.Errorf("hostname = %q, want alpha", out)
	}
	if out, _, _ := run(t, n, "cat", "/etc/hosts"); !strings.Contains(out, "10.9.0.2 beta") {
		t.Errorf("/etc/hosts in node = %q, want the node's hosts file", out)
	}
	if _, _, st := run(t, n, "sh", "-c", "echo 1.2.3.4 evil >> /etc/hosts"); st.Code == 0 {
		t.Error("a node could write the shared hosts file")
	}
	// A private /proc of a new pid namespace: the shell is a low pid and
	// only init and the command's own processes are visible.
	out, _, _ := run(t, n, "sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'")
	f := strings.Fields(out)
	if len(f) != 2 {
		t.Fatalf("pid probe output %q", out)
	}
	if pid, _ := strconv.Atoi(f[0]); pid < 2 || pid > 20 {
		t.Errorf("shell pid %s in node, want a small pid of a fresh pid namespace", f[0])
	}
	if cnt, _ := strconv.Atoi(f[1]); cnt > 5 {
		t.Errorf("%d processes visible in node /proc, want only init and the command", cnt)
	}
	// A new network namespace: only lo.
	if out, _, _ := run(t, n, "cat", "/proc/net/dev"); strings.Count(out, ":") != 1 || !strings.Contains(out, "lo:") {
		t.Errorf("/proc/net/dev in node = %q, want only lo", out)
	}
	// The host's hostname is untouched.
	if h, _ := os.Hostname(); h == "alpha" {
		t.Error("host name changed to the node's")
	}
}

func TestExecStatusAndIO(t *testing.T) {
	n, _ := startTestNode(t, Limits{})
	out, errs, st := run(t, n, "sh", "-c", "echo to-out; echo to-err >&2; exit 7")
	if out != "to-out\n" || errs != "to-err\n" || st.Code != 7 || st.ShellCode() != 7 {
		t.Errorf("got out %q err %q status %+v", out, errs, st)
	}
	_, _, st = run(t, n, "sh", "-c", "kill -9 $$")
	if st.Signal != 9 || st.ShellCode() != 137 {
		t.Errorf("killed command: status %+v, want signal 9", st)
	}
	// stdin passes through.
	r, w, _ := os.Pipe()
	var buf bytes.Buffer
	outR, outW, _ := os.Pipe()
	go func() { w.WriteString("hello node\n"); w.Close() }()
	done := make(chan struct{})
	go func() { buf.ReadFrom(outR); close(done) }()
	st, err := Exec("alpha", n.cfg.Socket, ExecOptions{Argv: []string{"/bin/cat"}, Stdin: r, Stdout: outW, Stderr: os.Stderr})
	r.Close()
	outW.Close()
	<-done
	if err != nil || st.Code != 0 || buf.String() != "hello node\n" {
		t.Errorf("cat: %q %+v %v", buf.String(), st, err)
	}
	if _, err := Exec("alpha", n.cfg.Socket, ExecOptions{Argv: []string{"no-such-command-xyz"}, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}); err == nil {
		t.Error("exec of a missing command succeeded")
	}
}

// TestInitReapsOrphans: a daemonized grandchild is reparented to the
// node's init when its parent exits; init must reap it.
func TestInitReapsOrphans(t *testing.T) {
	n, _ := startTestNode(t, Limits{})
	if _, _, st := run(t, n, "sh", "-c", "(sleep 0.2 &) ; exit 0"); st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	time.Sleep(600 * time.Millisecond)
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", n.Pid(), n.Pid()))
	for _, k := range strings.Fields(string(kids)) {
		stat, _ := os.ReadFile("/proc/" + k + "/stat")
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && bytes.HasPrefix(bytes.TrimSpace(stat[i+1:]), []byte("Z")) {
			t.Errorf("zombie %s left under node init", k)
		}
	}
}

// TestDestroyFromState: the owner of the node dies without stopping it; the
// on-disk state alone is enough to remove everything.
func TestDestroyFromState(t *testing.T) {
	n, _ := startTestNode(t, Limits{CPU: 0.5})
	run(t, n, "sh", "-c", "sleep 100 >/dev/null 2>&1 &")
	st := n.State()
	if err := Destroy(st, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	<-n.Done()
	testutil.CheckNoLeaks(t, testutil.Leaks{Pids: []int{st.Pid}, NetnsInodes: []uint64{st.NetnsInode},
		Paths: append(st.Cgroups, st.Socket)})
	if err := Destroy(st, time.Second); err != nil {
		t.Errorf("second Destroy (must be idempotent): %v", err)
	}
}

// TestExecTTY: with TTY the command runs on a pty of the node, as its
// controlling terminal, with the requested size; its output is relayed.
func TestExecTTY(t *testing.T) {
	n, _ := startTestNode(t, Limits{})
	outR, outW, _ := os.Pipe()
	in, _ := os.Open(os.DevNull)
	defer in.Close()
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { buf.ReadFrom(outR); close(done) }()
	st, err := Exec("alpha", n.cfg.Socket, ExecOptions{
		Argv: []string{"sh", "-c", "tty; test -t 0 && echo stdin-is-tty; ps -o tty= -p $$; exit 5"},
		Env:  []string{"PATH=/usr/bin:/bin"}, Stdin: in, Stdout: outW, Stderr: outW, TTY: true})
	outW.Close()
	<-done
	if err != nil || st.Code != 5 {
		t.Fatalf("exec: %+v %v", st, err)
	}
	out := buf.String()
	t.Logf("tty output: %q", out)
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "stdin-is-tty") || !strings.Contains(out, "pts/") {
		t.Errorf("tty output %q: want a pty as stdin and controlling terminal", out)
	}
}

// TestSignalsForwarded: a signal the caller forwards reaches the command;
// SIGTERM to init (Stop) is forwarded to every launched process group.
func TestSignalsForwarded(t *testing.T) {
	n, _ := startTestNode(t, Limits{})
	sigs := make(chan os.Signal, 1)
	outR, outW, _ := os.Pipe()
	in, _ := os.Open(os.DevNull)
	defer in.Close()
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { buf.ReadFrom(outR); close(done) }()
	type res struct {
		st  ExitStatus
		err error
	}
	rc := make(chan res, 1)
	go func() {
		st, err := Exec("alpha", n.cfg.Socket, ExecOptions{
			Argv: []string{"sh", "-c", `trap 'echo got-usr1' USR1; trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done`},
			Env:  []string{"PATH=/usr/bin:/bin"}, Stdin: in, Stdout: outW, Stderr: outW, Signals: sigs})
		rc <- res{st, err}
	}()
	time.Sleep(300 * time.Millisecond)
	sigs <- syscall.SIGUSR1
	time.Sleep(300 * time.Millisecond)
	if err := n.Stop(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	r := <-rc
	outW.Close()
	<-done
	if r.err != nil {
		t.Fatalf("exec: %v", r.err)
	}
	if out := buf.String(); !strings.Contains(out, "got-usr1") || !strings.Contains(out, "got-term") {
		t.Errorf("output %q: want both signals delivered to the command", out)
	}
	if r.st.Code != 3 {
		t.Errorf("status %+v, want exit 3 from the TERM trap", r.st)
	}
}

// TestExecDirectory: a command runs in the caller's directory when the
// node sees it, and in the node's root when it does not (a caller in the
// host's /tmp, which the node's private /tmp hides: it got "command not
// found" for every command).
func TestExecDirectory(t *testing.T) {
	n, _ := startTestNode(t, Limits{})
	hostOnly := t.TempDir() // under the host's /tmp (or TMPDIR)
	for _, tc := range []struct{ dir, want string }{
		{"/usr/bin", "/usr/bin"},
		{hostOnly, "/"},
		{"/no/such/dir", "/"},
	} {
		var buf bytes.Buffer
		r, w, _ := os.Pipe()
		done := make(chan struct{})
		go func() { buf.ReadFrom(r); close(done) }()
		st, err := Exec("alpha", n.cfg.Socket, ExecOptions{Argv: []string{"/bin/sh", "-c", "pwd"}, Dir: tc.dir, Stdin: os.Stdin, Stdout: w, Stderr: os.Stderr})
		w.Close()
		<-done
		if err != nil || st.Code != 0 || strings.TrimSpace(buf.String()) != tc.want {
			t.Errorf("exec in %s: pwd %q, %+v, %v; want %s", tc.dir, buf.String(), st, err, tc.want)
		}
	}
}

// TestBackgroundJobOutlivesExec: what a command leaves running in the
// background when it exits (a shell's job, in the command's process
// group) runs on after the exec returned, as after an exec into a
// container; before, init killed the group when the client hung up.
func TestBackgroundJobOutlivesExec(t *testing.T) {
	n, _ := startTestNode(t, Limits{})
	out, _, st := run(t, n, "sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1 & echo $!")
	if st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	pid := strings.TrimSpace(out)
	time.Sleep(200 * time.Millisecond)
	if _, _, st := run(t, n, "kill", "-0", pid); st.Code != 0 {
		t.Errorf("the background sleep (pid %s in the node) died with its exec", pid)
	}
}
