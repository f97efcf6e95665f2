package clock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
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

// Helper roles: an asker (Ask the named clock to pause, print the error
// class), and a server run as another user.
const (
	askerRole  = "clock-test-asker"
	serverRole = "clock-test-server"
)

func init() {
	reexec.Register(askerRole, func(args []string) int {
		if len(args) > 1 {
			// Wait until traced, as a dilated process would be.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if tp, _ := linux.TracerPid(os.Getpid()); tp != 0 {
					break
				}
			}
		}
		_, err := Ask(args[0], Request{Op: "pause"})
		switch {
		case err == nil:
			fmt.Println("ok")
		case errors.Is(err, ErrNotPermitted):
			fmt.Println("not-permitted")
		case errors.Is(err, ErrInsideRun):
			fmt.Println("inside-run")
		default:
			fmt.Println("error", err)
		}
		return 0
	})
	reexec.Register(serverRole, func(args []string) int {
		c, err := New(args[0], vclock.Config{TDF: vclock.One})
		if err == nil {
			_, err = Serve(c, ServeOptions{Name: args[0], Kind: KindRun})
		}
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("serving")
		select {}
	})
}

func serve(t *testing.T, k string) (*Clock, string) {
	t.Helper()
	c := newClock(t, k)
	name := "ctl-" + strconv.Itoa(os.Getpid()) + "-" + strings.ReplaceAll(t.Name(), "/", "-")
	s, err := Serve(c, ServeOptions{Name: name, Kind: KindExperiment})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c, name
}

func TestControl(t *testing.T) {
	testutil.MustRoot(t)
	c, name := serve(t, "10")
	st, err := Ask(name, Request{Op: "status"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != name || st.Kind != KindExperiment || st.Pid != os.Getpid() || st.TDF != "10" || st.Paused {
		t.Errorf("status %+v", st)
	}
	if st, err = Ask(name, Request{Op: "set", TDF: "5/2"}); err != nil || st.TDF != "5/2" {
		t.Fatalf("set: %+v %v", st, err)
	}
	if p, _ := c.Load(); p.TDF != (vclock.TDF{Num: 5, Den: 2}) {
		t.Errorf("owner sees %v after set", p.TDF)
	}
	if st, err = Ask(name, Request{Op: "pause"}); err != nil || !st.Paused {
		t.Fatalf("pause: %+v %v", st, err)
	}
	v1 := st.VirtMonotonic
	time.Sleep(20 * time.Millisecond)
	if st, err = Ask(name, Request{Op: "resume"}); err != nil || st.Paused {
		t.Fatalf("resume: %+v %v", st, err)
	}
	if d := st.VirtMonotonic - v1; d < 0 || d > int64(5*time.Millisecond) {
		t.Errorf("virtual time moved %v across a 20 ms pause", time.Duration(d))
	}
	if _, err := Ask(name, Request{Op: "set", TDF: "0"}); err == nil {
		t.Error("set tdf 0 accepted")
	}
	if _, err := Ask(name, Request{Op: "explode"}); !errors.Is(err, ErrProtocol) {
		t.Errorf("unknown op: %v", err)
	}
	names, err := List()
	if err != nil || !slices.Contains(names, name) {
		t.Errorf("List: %v %v, want it to hold %s", names, err, name)
	}
	if got, err := Find(name); err != nil || got != name {
		t.Errorf("Find by name: %q %v", got, err)
	}
	if _, err := Find("no-such-clock-" + strconv.Itoa(os.Getpid())); !errors.Is(err, ErrNoClock) {
		t.Errorf("Find unknown: %v", err)
	}
	if _, err := Serve(c, ServeOptions{Name: name}); !errors.Is(err, ErrNameInUse) {
		t.Errorf("second Serve of one name: %v", err)
	}
	if _, err := Ask("bad/name", Request{Op: "status"}); err == nil {
		t.Error("bad name accepted")
	}
}

// run starts a helper role, optionally as another user, and returns its
// first line of output.
func runRole(t *testing.T, cmd *exec.Cmd) (string, *exec.Cmd) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	return strings.TrimSpace(line), cmd
}

// TestControlRefusesNonRoot: a user who is not root can neither change a
// clock nor pose as one.
func TestControlRefusesNonRoot(t *testing.T) {
	testutil.MustRoot(t)
	_, name := serve(t, "2")
	cmd := reexec.Command("", askerRole, name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	line, cmd := runRole(t, cmd)
	cmd.Wait()
	if line != "not-permitted" {
		t.Errorf("non-root asker: %q, want not-permitted", line)
	}
	// A clock served by another user is not trusted.
	fake := "fake-" + strconv.Itoa(os.Getpid())
	srv := reexec.Command("", serverRole, fake)
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Pdeathsig: syscall.SIGKILL}
	line, srv = runRole(t, srv)
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if line != "serving" {
		t.Fatalf("non-root server: %q", line)
	}
	if _, err := Ask(fake, Request{Op: "status"}); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("asking a clock served by uid 65534: %v, want ErrNotPermitted", err)
	}
}

// TestControlRefusesTracee: a process traced by a holder of a clock memfd
// (a vmux supervisor) must not change a clock (its real-clock readings
// would be virtual), even as root.
func TestControlRefusesTracee(t *testing.T) {
	testutil.MustRoot(t)
	_, name := serve(t, "2")
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := reexec.Command("", askerRole, name, "wait-traced")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if err := linux.PtraceSeize(pid, linux.PtraceOExitKill); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	// Pass the tracee's signal stops on until it exits.
	lines := make(chan string, 1)
	go func() { l, _ := bufio.NewReader(out).ReadString('\n'); lines <- strings.TrimSpace(l) }()
	for {
		ws, err := linux.PtraceWaitTid(pid)
		if err != nil || ws.Exited() || ws.Signaled() {
			break
		}
		sig := 0
		if ws.Stopped() && ws.StopSignal() != syscall.SIGTRAP {
			sig = int(ws.StopSignal())
		}
		_ = linux.PtraceCont(pid, sig)
	}
	cmd.Process.Release()
	if line := <-lines; line != "inside-run" {
		t.Errorf("traced asker: %q, want inside-run", line)
	}
}
