package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vmux/vmux/rt/reexec"
)

// TestMain lets the test binary serve as every helper vmux re-executes
// (experiment daemon, node init, KSM launcher, demo watchdog).
func TestMain(m *testing.M) {
	reexec.Init()
	code := m.Run()
	if vmuxBin != "" {
		os.RemoveAll(filepath.Dir(vmuxBin))
	}
	os.Exit(code)
}
