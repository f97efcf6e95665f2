// Command testdaemon is the experiment daemon and node init of netd's
// fidelity tests, built without the race detector so that the emulator runs
// at production speed while the tests themselves run under -race.
package main

import (
	"fmt"
	"os"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/diecast/node"
)

func main() {
	if node.IsInit() {
		os.Exit(node.InitMain())
	}
	if name, ok := netd.IsDaemon(); ok {
		os.Exit(netd.DaemonMain(name))
	}
	fmt.Fprintln(os.Stderr, "testdaemon: run by netd tests only")
	os.Exit(2)
}
