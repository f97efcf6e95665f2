package dilate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
)

// TestMain fails the package if a test left a child process (a tracee or
// a launcher) or a file descriptor behind.
func TestMain(m *testing.M) {
	reexec.Init()
	// Several tests measure real durations (to ~10%): see
	// testutil.RaisePriority.
	testutil.RaisePriority(-15)
	// Start the runtime's netpoller (its epoll and eventfd) before counting.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	fds := countFds()
	code := m.Run()
	if kids := children(); len(kids) > 0 {
		fmt.Fprintf(os.Stderr, "leak: child processes left: %v\n", kids)
		code = 1
	}
	if n := countFds(); n > fds {
		fmt.Fprintf(os.Stderr, "leak: %d file descriptors open at start, %d at end\n", fds, n)
		code = 1
	}
	os.Exit(code)
}

func countFds() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

func children() []string {
	var kids []string
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		kids = append(kids, strings.Fields(string(b))...)
	}
	return kids
}
