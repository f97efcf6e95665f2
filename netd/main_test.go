package netd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vmux/vmux/node"
)

// TestMain lets the test binary serve as the daemon and the node inits it
// re-executes.
func TestMain(m *testing.M) {
	if node.IsInit() {
		os.Exit(node.InitMain())
	}
	if name, ok := IsDaemon(); ok {
		os.Exit(DaemonMain(name))
	}
	code := m.Run()
	if fastExe != "" {
		os.RemoveAll(filepath.Dir(fastExe))
	}
	os.Exit(code)
}
