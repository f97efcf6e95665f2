package server

import (
	"os"
	"testing"

	"github.com/vmux/vmux/rt/reexec"
)

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}
