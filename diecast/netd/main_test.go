package netd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vmux/vmux/rt/reexec"
)

// TestMain lets the test binary serve as the daemon and the node inits it
// re-executes.
func TestMain(m *testing.M) {
	reexec.Init()
	code := m.Run()
	for _, exe := range []string{fastExe, vmuxExe} {
		if exe != "" {
			os.RemoveAll(filepath.Dir(exe))
		}
	}
	os.Exit(code)
}
