package tcprto

import (
	"os"
	"testing"

	_ "github.com/vmux/vmux/diecast/netd" // the daemon's role, for the experiments of the tests
	"github.com/vmux/vmux/rt/reexec"
)

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}
