package node

import (
	"os"
	"testing"

	"github.com/vmux/vmux/rt/reexec"
)

// TestMain lets the test binary serve as the node init it re-executes.
func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}
