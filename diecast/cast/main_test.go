package cast

import (
	"os"
	"path/filepath"
	"testing"

	_ "github.com/vmux/vmux/diecast/diskmodel/server" // the disk model server role of scaled nodes
	"github.com/vmux/vmux/rt/reexec"
)

// TestMain lets the test binary serve as the roles vmux re-executes.
func TestMain(m *testing.M) {
	reexec.Init()
	code := m.Run()
	if vmuxExe != "" {
		os.RemoveAll(filepath.Dir(vmuxExe))
	}
	os.Exit(code)
}
