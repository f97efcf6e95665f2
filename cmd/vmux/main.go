// Command vmux makes one Linux machine host more machines than its hardware
// allows: time dilation, DieCast scale models and the Difference Engine.
package main

import (
	"os"

	"github.com/vmux/vmux/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
