package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (which must not skip).
func InCI() bool { return os.Getenv("CI") == "true" }

// skipOrFail skips with reason, or fails under CI.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing under CI: %s", reason)
	}
	t.Skip(reason)
}

// MustRoot skips (fails under CI) unless the test runs as root.
func MustRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root")
	}
}

// MustHaveCommand returns the path of name, skipping (failing under CI) if it
// is not installed. `make deps` installs every command the tests use.
func MustHaveCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(t, name+" not installed (run make deps)")
	}
	return p
}

// Short skips a slow test in -short mode.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow; skipped with -short")
	}
}
