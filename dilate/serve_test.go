package dilate

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
	"github.com/vmux/vmux/rt/vclock"
)

// starterRole plays a node's init in its own process (the real parent of
// what it starts must not be the tracer's process, whose wait4 would see
// the tracer's stops): it parks a launcher for its arguments, sends the
// launcher's pidfd over fd 3, releases it when it reads a byte back, reaps
// it and exits with its status.
const starterRole = "dilate-test-starter"

func init() {
	reexec.Register(starterRole, func(argv []string) int {
		ctl := os.NewFile(3, "ctl")
		path, err := Resolve(argv[0])
		if err != nil {
			return 120
		}
		p, err := Park(path, argv, os.Environ(), "", [3]*os.File{os.Stdin, os.Stdout, os.Stderr}, &syscall.SysProcAttr{Setsid: true})
		if err != nil {
			return 121
		}
		fd, err := linux.PidfdOpen(p.Pid)
		if err != nil {
			return 122
		}
		c, err := net.FileConn(ctl)
		if err != nil {
			return 123
		}
		if err := linux.SendWithFds(c.(*net.UnixConn), []byte("pidfd"), os.NewFile(uintptr(fd), "pidfd")); err != nil {
			return 124
		}
		if _, err := c.Read(make([]byte, 1)); err != nil {
			p.Abort()
		} else if err := p.Release(); err != nil {
			return 125
		}
		var ws syscall.WaitStatus
		for {
			if _, err := syscall.Wait4(p.Pid, &ws, 0, nil); err != syscall.EINTR {
				break
			}
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	})
}

// starter runs argv through starterRole, adopted by sup in domain d, with
// stdout on out; wait returns the program's exit status.
func starter(t *testing.T, sup *Supervisor, d *Domain, out *os.File, argv ...string) (wait func() int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "ctl")
	defer theirs.Close()
	cmd := reexec.Command("", starterRole, argv...)
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = out, os.Stderr, []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, files, err := linux.RecvWithFds(c.(*net.UnixConn), make([]byte, 16))
	if err != nil || len(files) != 1 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("starter sent no pidfd: %v", err)
	}
	defer files[0].Close()
	if err := sup.Adopt(files[0], d); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	return func() int {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}
}

// TestServeAdoptsProcesses: an experiment's supervisor adopts processes
// started by someone else, dilates them on its clock, follows what they
// start (a daemon outlives its starter and stays dilated), and Close ends
// every one.
func TestServeAdoptsProcesses(t *testing.T) {
	testutil.MustRoot(t)
	clk := newClock(t, "10", "")
	sup, err := Serve(Config{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	dir := t.TempDir()
	out, err := os.Create(dir + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// One program: 30 ms virtual of sleep is 300 ms real at k = 10.
	start := time.Now()
	code := starter(t, sup, nil, out, "/bin/sh", "-c", "sleep 0.03; echo done")()
	real := time.Since(start)
	if code != 0 {
		t.Fatalf("adopted program: exit %d", code)
	}
	if real < 300*time.Millisecond || real > 2*time.Second {
		t.Errorf("sleep 0.03 at k=10 took %v real, want about 300 ms", real)
	}
	// A daemon: its starter exits at once, it keeps running, traced.
	pidFile := dir + "/daemon.pid"
	if code := starter(t, sup, nil, out, "/bin/sh", "-c",
		"setsid /bin/sh -c 'echo $$ > "+pidFile+"; exec sleep 100' </dev/null >/dev/null 2>&1 &")(); code != 0 {
		t.Fatalf("daemon's starter: exit %d", code)
	}
	var daemon int
	for deadline := time.Now().Add(5 * time.Second); daemon == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		daemon, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if daemon == 0 {
		t.Fatal("the daemon never wrote its pid")
	}
	time.Sleep(100 * time.Millisecond)
	// TracerPid names the tracer's thread: it must be one of ours.
	if tp, err := linux.TracerPid(daemon); err != nil || tp == 0 {
		t.Errorf("daemon %d after its starter exited: tracer %d, %v; want this process", daemon, tp, err)
	} else if tgid, _ := procIDs(tp); tgid != os.Getpid() {
		t.Errorf("daemon %d after its starter exited: traced by thread %d of process %d, want this process", daemon, tp, tgid)
	}
	if n := sup.adopted.Load(); n != 2 {
		t.Errorf("adopted %d processes, want 2", n)
	}
	if err := sup.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sup.Wait(); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close: %v, want ErrClosed", err)
	}
	if linux.ProcessAlive(daemon) {
		// Reaped by init (pid 1) after SIGKILL: give it a moment.
		time.Sleep(200 * time.Millisecond)
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(daemon) + "/stat"); len(b) > 0 && !strings.Contains(string(b), ") Z") {
			t.Errorf("daemon %d alive after Close", daemon)
		}
	}
}

// TestServeRefusesCommand: Serve runs nothing of its own; Adopt is only
// for a Serve.
func TestServeRefusesCommand(t *testing.T) {
	clk := newClock(t, "2", "")
	if _, err := Serve(Config{Clock: clk, Args: []string{"/bin/true"}}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Serve with a command: %v", err)
	}
	st, _, err := run(t, "2", "/bin/true")
	if err != nil || st != (Status{}) {
		t.Fatal(st, err)
	}
}

// TestDomainShare: a tree follows its domain's CPU share, which may change
// while it runs (a node's c/k when the experiment's k changes).
func TestDomainShare(t *testing.T) {
	clk := newClock(t, "10", "")
	view, err := clk.View()
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	d, err := NewDomain(vclock.Share{Num: 1, Den: 10})
	if err != nil {
		t.Fatal(err)
	}
	tr := &tracer{pcache: newParamCache(view)}
	th := &thread{tree: newTree(1, d, nil)}
	k := vclock.TDF{Num: 10, Den: 1}
	for _, sh := range []vclock.Share{{Num: 1, Den: 10}, {Num: 1, Den: 4}} {
		if err := d.SetShare(sh); err != nil {
			t.Fatal(err)
		}
		p, err := tr.params(th)
		if err != nil {
			t.Fatal(err)
		}
		if p.Share != sh || p.CPUMult != vclock.CPUMult(sh, k) {
			t.Errorf("share %v: params carry %v, cpu mult %d (want %d)", sh, p.Share, p.CPUMult, vclock.CPUMult(sh, k))
		}
	}
	if p, _ := tr.params(&thread{tree: newTree(1, nil, nil)}); p.Share != vclock.FullShare {
		t.Errorf("no domain: share %v, want the clock's %v", p.Share, vclock.FullShare)
	}
	if err := d.SetShare(vclock.Share{Num: 2, Den: 1}); err == nil {
		t.Error("a share above one core accepted")
	}
}
