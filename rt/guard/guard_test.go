package guard

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/rt/reexec"
)

// The test hook writes the file named by $GUARD_TEST_MARK.
const (
	markEnv   = "GUARD_TEST_MARK"
	ownerRole = "guard-test-owner"
)

func init() {
	RegisterHook("test-mark", func() error {
		return os.WriteFile(os.Getenv(markEnv), []byte("ran"), 0o600)
	})
	// The owner starts a guard, a process group to watch (sh and its
	// sleep), asks for the hook, says "ready PID" and waits to be killed.
	reexec.Register(ownerRole, func([]string) int {
		g, err := Start("")
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		c := exec.Command("sh", "-c", "sleep 100 & sleep 100")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // no parent-death signal: the guard must do it
		if err := c.Start(); err != nil {
			fmt.Println("error", err)
			return 1
		}
		if err := g.Watch(c.Process.Pid); err != nil {
			fmt.Println("error", err)
			return 1
		}
		if err := g.Hook("test-mark"); err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("ready", c.Process.Pid, g.Pid())
		select {}
	})
}

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

// TestGuardAfterSIGKILL: the owner is killed with SIGKILL; its guard kills
// the watched process group (children included) and runs the hook.
func TestGuardAfterSIGKILL(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	cmd := reexec.Command("", ownerRole)
	cmd.Env = append(cmd.Env, markEnv+"="+mark)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("owner said %q", line)
	}
	pgid, _ := strconv.Atoi(f[1])
	guardPid, _ := strconv.Atoi(f[2])
	time.Sleep(50 * time.Millisecond) // let sh start its background sleep
	members := groupMembers(pgid)
	if len(members) < 2 {
		t.Fatalf("watched group %d has %v", pgid, members)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (len(liveOf(members)) > 0 || !exists(mark)) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := liveOf(members); len(left) > 0 {
		for _, p := range left {
			syscall.Kill(p, syscall.SIGKILL)
		}
		t.Errorf("watched processes %v survived their owner's SIGKILL", left)
	}
	if !exists(mark) {
		t.Errorf("the hook did not run")
	}
	for time.Now().Before(deadline) && len(liveOf([]int{guardPid})) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if len(liveOf([]int{guardPid})) > 0 {
		t.Errorf("the guard %d is still running", guardPid)
	}
}

// TestGuardClose: a normal Close runs the hook (idempotent work) and waits
// for the guard; a process that already exited is left alone.
func TestGuardClose(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	t.Setenv(markEnv, mark)
	g, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command("true")
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Start()
	if err := g.Watch(c.Process.Pid); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	if err := g.Hook("test-mark"); err != nil {
		t.Fatal(err)
	}
	if err := g.Hook("no-such-hook"); err == nil {
		t.Error("an unknown hook was accepted")
	}
	if err := g.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !exists(mark) {
		t.Error("the hook did not run on Close")
	}
	if err := g.Watch(os.Getpid()); err == nil {
		t.Error("Watch after Close succeeded")
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// groupMembers lists the live processes of process group pgid.
func groupMembers(pgid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

// liveOf keeps the pids that still run (zombies count as dead).
func liveOf(pids []int) []int {
	var out []int
	for _, p := range pids {
		if _, err := startTime(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}
