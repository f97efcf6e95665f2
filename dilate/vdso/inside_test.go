package vdso

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
	"github.com/vmux/vmux/rt/vclock"
)

// updaterRole makes the test binary a helper that changes the clock at
// the path it is given once it is traced (see updateWhileTraced).
const updaterRole = "vdso-test-clock-updater"

func init() {
	reexec.Register(updaterRole, func(args []string) int { return updateWhileTraced(args[0]) })
}

// updateWhileTraced waits to be traced, then tries SetTDF; the exit code
// says what happened: 3 refused with ErrInsideRun, 0 allowed, 4 other.
func updateWhileTraced(path string) int {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, _ := os.ReadFile("/proc/self/status")
		if !strings.Contains(string(b), "TracerPid:\t0\n") {
			break
		}
	}
	c, err := OpenClock(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	defer c.Close()
	_, err = c.SetTDF(vclock.TDF{Num: 3, Den: 1})
	switch {
	case errors.Is(err, ErrInsideRun):
		return 3
	case err == nil:
		return 0
	}
	fmt.Fprintln(os.Stderr, err)
	return 4
}

// TestUpdateRefusedInsideRun: a process traced by a holder of a clock
// memfd (a vmux supervisor) must not change a clock: its real-clock
// readings would be virtual, and its trapped syscalls would wait on the
// supervisor, which waits on the seqlock it holds.
func TestUpdateRefusedInsideRun(t *testing.T) {
	testutil.MustRoot(t)
	clk := newTestClock(t, "2")
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := reexec.Command("", updaterRole, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), clk.Fd()))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Release()
	pid := cmd.Process.Pid
	if err := linux.PtraceSeize(pid, linux.PtraceOExitKill); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	// Only the main thread is traced: pass its signals (SIGURG, ...) on
	// until it exits.
	code := -1
	for code < 0 {
		ws, err := linux.PtraceWaitTid(pid)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ws.Exited():
			code = ws.ExitStatus()
		case ws.Signaled():
			t.Fatalf("helper killed by %v", ws.Signal())
		case ws.Stopped():
			sig := ws.StopSignal()
			if ws.TrapCause() > 0 || sig == 0x80|5 || sig == 5 {
				sig = 0
			}
			if err := linux.PtraceCont(pid, int(sig)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code != 3 {
		t.Fatalf("helper exit %d, want 3 (refused with ErrInsideRun)", code)
	}
	if p := mustLoad(t, clk); p.TDF != (vclock.TDF{Num: 2, Den: 1}) {
		t.Errorf("clock changed from inside: %+v", p.TDF)
	}
}
