// Command testdaemon is the experiment daemon and node init of netd's
// fidelity tests, built without the race detector so that the emulator runs
// at production speed while the tests themselves run under -race.
package main

import (
	"fmt"
	"os"

	_ "github.com/vmux/vmux/diecast/diskmodel/server" // the disk model's role
	_ "github.com/vmux/vmux/diecast/netd"             // the daemon role
	_ "github.com/vmux/vmux/diecast/node"             // the node-init role
	"github.com/vmux/vmux/rt/reexec"
)

func main() {
	reexec.Init()
	fmt.Fprintln(os.Stderr, "testdaemon: run by netd tests only")
	os.Exit(2)
}
