package cli

import (
	"os"
	"testing"

	"github.com/vmux/vmux/rt/reexec"
)

// TestMain lets the test binary serve as every helper vmux re-executes
// (experiment daemon, node init, KSM launcher, demo watchdog).
func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}
