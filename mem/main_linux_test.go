//go:build linux

package mem

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain fails the run if the tests leave a file descriptor open or a
// child process (started helpers, python3/perl/redis-server) behind.
func TestMain(m *testing.M) {
	// the runtime's poller descriptors open on first use and stay: open
	// them now so that they are not counted as a leak
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before, err := countFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "leak check:", err)
		os.Exit(1)
	}
	code := m.Run()
	after, err := countFDs()
	if err == nil && after > before {
		err = fmt.Errorf("%d file descriptors leaked", after-before)
	}
	if err == nil {
		err = checkNoChildren()
	}
	if err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "leak check:", err)
		code = 1
	}
	os.Exit(code)
}

func countFDs() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	return len(ents), err
}

// checkNoChildren fails if any thread of this process still has a child.
func checkNoChildren() error {
	paths, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		return err
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // thread exited
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return fmt.Errorf("child processes left running: %s", s)
		}
	}
	return nil
}
