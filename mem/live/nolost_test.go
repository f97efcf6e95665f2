package live

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// The "nothing lost, ever" tests: real redis (DEBUG DIGEST before and
// after) and a python process that checksums its arrays, with the engine
// killed -9, stopped, the process exiting and forking while pages are held.

type redisProc struct {
	t    testing.TB
	cmd  *exec.Cmd
	port int
	dir  string
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRedis(t testing.TB, extra ...string) *redisProc {
	t.Helper()
	bin := testutil.MustHaveCommand(t, "redis-server")
	testutil.MustHaveCommand(t, "redis-cli")
	r := &redisProc{t: t, port: freePort(t), dir: t.TempDir()}
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--enable-debug-command", "yes", "--dir", r.dir, "--daemonize", "no"}, extra...)
	r.cmd = exec.Command(bin, args...)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cmd.Process.Kill(); r.cmd.Wait() })
	for i := 0; ; i++ {
		if out, err := r.cli(5*time.Second, "PING"); err == nil && out == "PONG" {
			break
		}
		if i > 100 {
			t.Fatal("redis did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

func (r *redisProc) pid() int { return r.cmd.Process.Pid }

func (r *redisProc) cli(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-p", strconv.Itoa(r.port)}, args...)...).Output()
	return strings.TrimSpace(string(out)), err
}

func (r *redisProc) must(args ...string) string {
	r.t.Helper()
	out, err := r.cli(60*time.Second, args...)
	if err != nil {
		r.t.Fatalf("redis-cli %v: %v", args, err)
	}
	return out
}

// fill stores about 60 MB: many similar values and some random ones.
func (r *redisProc) fill() string {
	r.must("DEBUG", "POPULATE", "200000", "key", "200")
	r.must("EVAL", "for i=1,3000 do redis.call('SET','blob:'..i, string.rep(string.char(i%256), 4000)) end return 1", "0")
	return r.must("DEBUG", "DIGEST")
}

type pyProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	want string
}

func startPython(t *testing.T) *pyProc {
	t.Helper()
	py := testutil.MustHaveCommand(t, "python3")
	cmd := exec.Command(py, "testdata/arrays.py")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pyProc{t: t, cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	f := strings.Fields(p.line(60 * time.Second))
	if len(f) != 3 || f[0] != "ready" {
		t.Fatalf("python said %v", f)
	}
	p.want = f[2]
	return p
}

func (p *pyProc) pid() int { return p.cmd.Process.Pid }

// line reads one answer; "" on timeout.
func (p *pyProc) line(timeout time.Duration) string {
	c := make(chan string, 1)
	go func() { s, _ := p.out.ReadString('\n'); c <- strings.TrimSpace(s) }()
	select {
	case s := <-c:
		return s
	case <-time.After(timeout):
		return ""
	}
}

func (p *pyProc) check() {
	p.t.Helper()
	fmt.Fprintln(p.in, "check")
	if got := p.line(60 * time.Second); got != "ok "+p.want {
		p.t.Fatalf("python's arrays changed: %q, want ok %s", got, p.want)
	}
}

// daemon starts a background engine over dir.
func daemon(t *testing.T, dir string, recover bool) int {
	t.Helper()
	pid, err := Start(Options{Config: Config{Dir: dir, Cold: time.Second, Interval: 250 * time.Millisecond, CPU: 1}, Recover: recover})
	if err != nil {
		if b, rerr := os.ReadFile(filepath.Join(dir, logFile)); rerr == nil {
			t.Logf("engine log:\n%s", b)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, logFile)); err == nil {
				t.Logf("engine log:\n%s", b)
			}
		}
		if p, err := os.FindProcess(pid); err == nil {
			p.Signal(syscall.SIGTERM) // gives pages back if it still runs
		}
		for i := 0; i < 300; i++ {
			if _, ok := Owner(dir); !ok {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return pid
}

func call(t *testing.T, dir string, req Request) *Response {
	t.Helper()
	resp, err := Call(dir, req, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.OK {
		t.Fatalf("%s: %s %v", req.Op, resp.Error, resp.Errors)
	}
	return resp
}

// waitHeldAll waits until every pid has at least min pages held.
func waitHeldAll(t *testing.T, dir string, min map[int]int64) *Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := call(t, dir, Request{Op: "status"}).Status
		done := true
		for pid, n := range min {
			found := false
			for _, p := range st.Processes {
				if p.Pid == pid && p.PagesHeld >= n {
					found = true
				}
			}
			done = done && found
		}
		if done {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pages held after 60 s: %+v, want %v", st.Processes, min)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func stateDir(t *testing.T) string { return filepath.Join(t.TempDir(), "live") }

func assertNoUffd(t *testing.T, pid int) {
	t.Helper()
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, f := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, f.Name())); l == "anon_inode:[userfaultfd]" {
			t.Errorf("process %d still has a userfaultfd (fd %s)", pid, f.Name())
		}
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if strings.Contains(string(b), " um") {
		t.Errorf("process %d still has memory registered with a userfaultfd", pid)
	}
}

func TestKill9ThenRecover(t *testing.T) {
	testutil.MustRoot(t)
	r := startRedis(t)
	digest := r.fill()
	py := startPython(t)
	dir := stateDir(t)
	pid := daemon(t, dir, false)
	call(t, dir, Request{Op: "attach", Pids: []int{r.pid(), py.pid()}})
	st := waitHeldAll(t, dir, map[int]int64{r.pid(): 5000, py.pid(): 5000})
	t.Logf("before kill -9: held %d pages, net saved %d MiB", st.PagesHeld, st.NetSavedBytes>>20)

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, ok := Owner(dir); !ok {
			break
		}
		if i > 100 {
			t.Fatal("engine did not die")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// With the engine dead, touching a held page waits: never zeros.
	type res struct {
		s   string
		err error
	}
	rd := make(chan res, 1)
	go func() { s, err := r.cli(5*time.Minute, "DEBUG", "DIGEST"); rd <- res{s, err} }()
	fmt.Fprintln(py.in, "check")
	pyc := make(chan string, 1)
	go func() { pyc <- py.line(5 * time.Minute) }()
	select {
	case x := <-rd:
		t.Fatalf("redis answered with the engine dead (%q, %v): its held pages did not wait", x.s, x.err)
	case s := <-pyc:
		t.Fatalf("python answered with the engine dead (%q): its held pages did not wait", s)
	case <-time.After(2 * time.Second):
	}
	daemon(t, dir, true)
	if x := <-rd; x.err != nil || x.s != digest {
		t.Fatalf("redis digest after recover: %q %v, want %s", x.s, x.err, digest)
	}
	if s := <-pyc; s != "ok "+py.want {
		t.Fatalf("python after recover: %q", s)
	}
	// the recovered engine keeps going, and stop gives everything back
	waitHeldAll(t, dir, map[int]int64{r.pid(): 1000, py.pid(): 1000})
	call(t, dir, Request{Op: "stop"})
	if got := r.must("DEBUG", "DIGEST"); got != digest {
		t.Fatalf("redis digest after stop: %s, want %s", got, digest)
	}
	py.check()
	assertNoUffd(t, r.pid())
	assertNoUffd(t, py.pid())
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state directory left after stop: %v", err)
	}
}

func TestStopGivesEverythingBack(t *testing.T) {
	testutil.MustRoot(t)
	r := startRedis(t)
	digest := r.fill()
	py := startPython(t)
	dir := stateDir(t)
	daemon(t, dir, false)
	call(t, dir, Request{Op: "attach", Pids: []int{r.pid(), py.pid()}})
	before := waitHeldAll(t, dir, map[int]int64{r.pid(): 5000, py.pid(): 5000})
	for _, p := range before.Processes {
		if p.RSSNow >= p.RSSBefore {
			t.Errorf("%s: RSS %d -> %d with %d pages held", p.Name, p.RSSBefore, p.RSSNow, p.PagesHeld)
		}
	}
	call(t, dir, Request{Op: "stop"})
	if got := r.must("DEBUG", "DIGEST"); got != digest {
		t.Fatalf("redis digest after stop: %s, want %s", got, digest)
	}
	py.check()
	assertNoUffd(t, r.pid())
	assertNoUffd(t, py.pid())
}

func TestProcessExitsWhileHeld(t *testing.T) {
	testutil.MustRoot(t)
	py := startPython(t)
	py2 := startPython(t)
	dir := stateDir(t)
	daemon(t, dir, false)
	call(t, dir, Request{Op: "attach", Pids: []int{py.pid(), py2.pid()}})
	waitHeldAll(t, dir, map[int]int64{py.pid(): 3000, py2.pid(): 3000})
	fmt.Fprintln(py.in, "exit")
	py.cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := call(t, dir, Request{Op: "status"}).Status
		if len(st.Processes) == 1 && st.Processes[0].Pid == py2.pid() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exited process still managed: %+v", st.Processes)
		}
		time.Sleep(100 * time.Millisecond)
	}
	py2.check()
	call(t, dir, Request{Op: "stop"})
	py2.check()
}

func TestForkWhileHeld(t *testing.T) {
	testutil.MustRoot(t)
	py := startPython(t)
	r := startRedis(t)
	digest := r.fill()
	dir := stateDir(t)
	daemon(t, dir, false)
	call(t, dir, Request{Op: "attach", Pids: []int{py.pid(), r.pid()}})
	waitHeldAll(t, dir, map[int]int64{py.pid(): 5000, r.pid(): 5000})
	// a python fork: the child reads every array through its own faults
	fmt.Fprintln(py.in, "fork")
	if got := py.line(60 * time.Second); got != "child ok "+py.want {
		t.Fatalf("fork child: %q", got)
	}
	if got := py.line(60 * time.Second); got != "ok "+py.want {
		t.Fatalf("parent after fork: %q", got)
	}
	// a write in the parent after the fork is the parent's alone
	fmt.Fprintln(py.in, "touch 1")
	nw := strings.Fields(py.line(60 * time.Second))
	if len(nw) != 2 || nw[0] != "ok" || nw[1] == py.want {
		t.Fatalf("touch: %v", nw)
	}
	py.want = nw[1]
	waitHeldAll(t, dir, map[int]int64{py.pid(): 3000})
	fmt.Fprintln(py.in, "fork")
	if got := py.line(60 * time.Second); got != "child ok "+py.want {
		t.Fatalf("second fork child: %q", got)
	}
	py.line(60 * time.Second)
	// redis BGSAVE forks a child that writes every key: the dump must hold
	// the same data
	r.must("BGSAVE")
	for i := 0; ; i++ {
		if info := r.must("INFO", "persistence"); strings.Contains(info, "rdb_bgsave_in_progress:0") {
			if !strings.Contains(info, "rdb_last_bgsave_status:ok") {
				t.Fatalf("bgsave failed: %s", info)
			}
			break
		}
		if i > 600 {
			t.Fatal("bgsave did not finish")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// load the dump in a second redis
	r3dir := r.dir
	r3 := &redisProc{t: t, port: freePort(t), dir: r3dir}
	r3.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r3.port), "--bind", "127.0.0.1", "--dir", r3dir,
		"--dbfilename", "dump.rdb", "--appendonly", "no", "--save", "", "--enable-debug-command", "yes")
	if err := r3.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r3.cmd.Process.Kill(); r3.cmd.Wait() })
	size := r.must("DBSIZE")
	for i := 0; ; i++ {
		// DEBUG answers while the dump loads (and INFO can say loading:0
		// before the load begins): wait for every key
		info, err := r3.cli(5*time.Second, "INFO", "persistence")
		if n, _ := r3.cli(5*time.Second, "DBSIZE"); err == nil && n == size && strings.Contains(info, "loading:0") {
			break
		}
		if i > 600 {
			t.Fatal("second redis did not load the dump")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := r3.must("DEBUG", "DIGEST"); out != digest {
		t.Fatalf("dump written by the fork child has digest %s, want %s", out, digest)
	}
	if got := r.must("DEBUG", "DIGEST"); got != digest {
		t.Fatalf("redis digest after bgsave: %s", got)
	}
	call(t, dir, Request{Op: "stop"})
	py.check()
	if got := r.must("DEBUG", "DIGEST"); got != digest {
		t.Fatalf("redis digest after stop: %s", got)
	}
	assertNoUffd(t, py.pid())
	assertNoUffd(t, r.pid())
}
