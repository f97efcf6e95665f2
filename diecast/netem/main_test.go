package netem

import (
	"os"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

// The real-time tests measure delays to a fraction of a millisecond while
// CI runs other packages' tests on the same two cores; at nice 0 the
// emulator (or ping) can wait tens of ms for a CPU. As root the suite runs
// at a raised priority, which threads and child processes inherit.
func TestMain(m *testing.M) {
	testutil.RaisePriority(-15)
	os.Exit(m.Run())
}
