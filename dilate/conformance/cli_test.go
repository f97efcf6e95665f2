package conformance

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

var (
	vmuxOnce sync.Once
	vmuxBin  string
	vmuxErr  error
)

// buildVmux builds the vmux binary once (into the suite's temp dir) for
// end-to-end tests of `vmux run`.
func buildVmux(t *testing.T) string {
	t.Helper()
	gocmd := testutil.MustHaveCommand(t, "go")
	vmuxOnce.Do(func() {
		vmuxBin = filepath.Join(suiteDir, "vmux")
		out, err := exec.Command(gocmd, "build", "-o", vmuxBin, "../../cmd/vmux").CombinedOutput()
		if err != nil {
			vmuxErr = fmt.Errorf("building vmux: %w\n%s", err, out)
		}
	})
	if vmuxErr != nil {
		t.Fatal(vmuxErr)
	}
	return vmuxBin
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestVmuxRunCLI(t *testing.T) {
	vmux := buildVmux(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string // in stderr
	}{
		{"exit status", []string{"run", "--tdf", "10", "--", "/bin/sh", "-c", "exit 3"}, 3, ""},
		{"fatal signal", []string{"run", "--tdf", "2", "--", "/bin/sh", "-c", "kill -KILL $$"}, 128 + 9, ""},
		{"zero tdf", []string{"run", "--tdf", "0", "--", "/bin/true"}, 1, "invalid time-dilation factor"},
		{"negative tdf", []string{"run", "--tdf", "-2", "--", "/bin/true"}, 1, "must be positive"},
		{"junk tdf", []string{"run", "--tdf", "fast", "--", "/bin/true"}, 1, "invalid time-dilation factor"},
		{"missing tdf", []string{"run", "--", "/bin/true"}, 1, "tdf"},
		{"unknown command", []string{"run", "--tdf", "2", "--", "vmux-no-such-command"}, 1, "command cannot be run"},
		{"not executable", []string{"run", "--tdf", "2", "--", "/etc/passwd"}, 1, "command cannot be run"},
		{"bad start", []string{"run", "--tdf", "2", "--start", "yesterday", "--", "/bin/true"}, 1, "--start"},
		{"bad share", []string{"run", "--tdf", "2", "--cpu", "2", "--", "/bin/true"}, 1, "CPU share"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(vmux, tc.args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			if got := exitCode(err); got != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", got, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.msg)
			}
		})
	}
}

func TestVmuxRunStartTime(t *testing.T) {
	vmux := buildVmux(t)
	out, err := exec.Command(vmux, "run", "--tdf", "2", "--start", "2030-01-02T03:04:05Z", "--", "/bin/date", "-u", "+%Y-%m-%d %H:%M").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "2030-01-02 03:04" {
		t.Errorf("date under --start printed %q", got)
	}
}

// TestVmuxRunUnderTracer: vmux run inside strace -f cannot trace its
// program and says so before the program runs.
func TestVmuxRunUnderTracer(t *testing.T) {
	strace := testutil.MustHaveCommand(t, "strace")
	vmux := buildVmux(t)
	marker := filepath.Join(t.TempDir(), "ran")
	cmd := exec.Command(strace, "-f", "-o", "/dev/null", vmux, "run", "--tdf", "2", "--", "/usr/bin/touch", marker)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exitCode(err) == 0 || !strings.Contains(stderr.String(), "already traced") {
		t.Errorf("exit %d, stderr %q: want an 'already traced' error", exitCode(err), stderr.String())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the program ran although it could not be dilated")
	}
}

// TestVmuxKilledKillsTree: SIGKILL to vmux leaves no tracee behind
// (PTRACE_O_EXITKILL), and SIGTERM is forwarded.
func TestVmuxKilledKillsTree(t *testing.T) {
	vmux := buildVmux(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		pidFile := filepath.Join(t.TempDir(), "pid")
		cmd := exec.Command(vmux, "run", "--tdf", "2", "--", "/bin/sh", "-c", "echo $$ > "+pidFile+"; exec sleep 100")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var pid int
		for deadline := time.Now().Add(5 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			b, _ := os.ReadFile(pidFile)
			pid = atoi(strings.TrimSpace(string(b)))
		}
		if pid == 0 {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal("the program never started")
		}
		time.Sleep(50 * time.Millisecond)
		_ = cmd.Process.Signal(sig)
		err := cmd.Wait()
		if sig == syscall.SIGTERM && exitCode(err) != 128+int(syscall.SIGTERM) {
			t.Errorf("vmux exit after SIGTERM: %d, want %d (forwarded, program killed)", exitCode(err), 128+15)
		}
		gone := false
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if dead(pid) {
				gone = true
				break
			}
		}
		if !gone {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("%v to vmux left its program %d running", sig, pid)
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// dead reports a process that no longer runs: gone, or a zombie waiting
// for its new parent (init here) to reap it.
func dead(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}
