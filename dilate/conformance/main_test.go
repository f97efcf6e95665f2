package conformance

import (
	"fmt"
	"os"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
)

// nice is the priority the suite runs at when it can (root). The suite
// measures real durations to a few ms while CI runs other packages' tests
// on the same two cores; at nice 0 a tracee or the supervisor waits for a
// CPU for tens of ms.
const nice = -15

// suiteDir holds files shared by the suite's tests (the vmux binary).
var suiteDir string

func TestMain(m *testing.M) {
	reexec.Init()
	var err error
	if suiteDir, err = os.MkdirTemp("", "vmux-conformance-"); err != nil {
		fmt.Fprintln(os.Stderr, "creating the suite's temp dir:", err)
		os.Exit(1)
	}
	testutil.RaisePriority(nice)
	code := m.Run()
	os.RemoveAll(suiteDir)
	os.Exit(code)
}
