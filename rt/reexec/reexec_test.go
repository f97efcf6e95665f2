package reexec

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func init() {
	Register("reexec-test-echo", func(args []string) int {
		if Role() != "" {
			return 3 // the selection must not leak into the role's own environment
		}
		os.Stdout.WriteString(strings.Join(args, ",") + "\n")
		return 7
	})
}

func TestMain(m *testing.M) {
	Init()
	os.Exit(m.Run())
}

func TestCommandRunsRole(t *testing.T) {
	cmd := Command("", "reexec-test-echo", "a", "b c")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("role exit: err=%v, want status 7", err)
	}
	if got := strings.TrimSpace(string(out)); got != "a,b c" {
		t.Fatalf("role args: %q, want %q", got, "a,b c")
	}
	if cmd.Args[0] != "vmux-reexec-test-echo" {
		t.Fatalf("argv[0] %q", cmd.Args[0])
	}
}

func TestUnknownRoleFails(t *testing.T) {
	cmd := Command("", "no-such-role")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "unknown helper role") {
		t.Fatalf("unknown role: err=%v out=%q", err, out)
	}
}

func TestEnvironReplacesSelection(t *testing.T) {
	env := Environ([]string{"A=1", Env + "=old", "B=2"}, "new")
	if strings.Join(env, " ") != "A=1 B=2 "+Env+"=new" {
		t.Fatalf("Environ: %v", env)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("second Register of a role did not panic")
		}
	}()
	Register("reexec-test-echo", func([]string) int { return 0 })
}
