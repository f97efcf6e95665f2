package node

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the node init it re-executes.
func TestMain(m *testing.M) {
	if IsInit() {
		os.Exit(InitMain())
	}
	os.Exit(m.Run())
}
