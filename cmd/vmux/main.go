// Command vmux makes one Linux machine host more machines than its hardware
// allows: time dilation, DieCast scale models and the Difference Engine.
package main

import (
	"os"

	_ "github.com/vmux/vmux/diecast/diskmodel/server" // the disk model's server role
	"github.com/vmux/vmux/internal/cli"
	"github.com/vmux/vmux/rt/reexec"
)

func main() {
	reexec.Init() // a helper role (node init, daemon, launcher...) runs and exits here
	os.Exit(cli.Main(os.Args[1:]))
}
