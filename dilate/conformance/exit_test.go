package conformance

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

// TestVmuxRunDiesAsItsChild: a dilated program killed by a signal whose
// default action dumps core (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL,
// SIGQUIT) or terminates makes vmux run die of the same signal, with
// nothing on stderr: no Go crash dump, no exit status 2 (issue 10, item 6).
// A shell then reports "Segmentation fault" and 139 as it would for the
// program itself.
func TestVmuxRunDiesAsItsChild(t *testing.T) {
	vmux := buildVmux(t)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{
		{"SEGV", syscall.SIGSEGV}, {"ABRT", syscall.SIGABRT}, {"BUS", syscall.SIGBUS}, {"FPE", syscall.SIGFPE},
		{"ILL", syscall.SIGILL}, {"QUIT", syscall.SIGQUIT}, {"TERM", syscall.SIGTERM}, {"USR1", syscall.SIGUSR1},
	} {
		sig := tc.sig
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(vmux, "run", "--tdf", "2", "--", "/bin/sh", "-c", "kill -"+tc.name+" $$")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			checkDiedOf(t, err, sig, stderr.String())
		})
	}
	// A real fault and a real abort(3), not only kill(1).
	py := testutil.MustHaveCommand(t, "python3")
	for _, tc := range []struct {
		code string
		sig  syscall.Signal
	}{
		{"import os; os.abort()", syscall.SIGABRT},
		{"import ctypes; ctypes.string_at(0)", syscall.SIGSEGV},
	} {
		t.Run("python "+tc.sig.String(), func(t *testing.T) {
			cmd := exec.Command(vmux, "run", "--tdf", "2", "--", py, "-c", tc.code)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			checkDiedOf(t, err, tc.sig, stderr.String())
		})
	}
}

func checkDiedOf(t *testing.T, err error, sig syscall.Signal, stderr string) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("vmux run: %v, want death by %v", err, sig)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != sig {
		t.Errorf("vmux run ended with %v (exit %d), want killed by %v", ws, ws.ExitStatus(), sig)
	}
	if ws.CoreDump() {
		t.Errorf("vmux dumped a core of itself")
	}
	for _, w := range []string{"goroutine", "PC=", "runtime."} {
		if strings.Contains(stderr, w) {
			t.Errorf("stderr has a Go crash dump (%q):\n%.600s", w, stderr)
			break
		}
	}
}
