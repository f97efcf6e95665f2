package live

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vmux/vmux/internal/linux"
)

// The owner file names the engine process that holds a state directory:
// "PID START\n", START its start time, so that a reused PID is not taken
// for the engine.

func writeOwner(dir string) error {
	pi, err := readProc(os.Getpid())
	if err != nil {
		return err
	}
	f, err := linux.OpenOwnerOnly(filepath.Join(dir, ownerFile), true)
	if err != nil {
		return fmt.Errorf("write live engine owner: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%d %d\n", os.Getpid(), pi.start)
	return err
}

// liveOwner returns the PID of the live engine holding dir, if it runs.
func liveOwner(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil || len(b) > 64 {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	pi, err := readProc(pid)
	if err != nil || pi.start != start {
		return 0, false
	}
	return pid, true
}

// Owner returns the PID of the engine running over dir (DefaultDir when
// empty), if one does.
func Owner(dir string) (int, bool) {
	if dir == "" {
		dir = DefaultDir
	}
	return liveOwner(dir)
}

// HasState reports whether dir holds the journal of an engine (running,
// or dead with pages to recover).
func HasState(dir string) bool {
	if dir == "" {
		dir = DefaultDir
	}
	_, err := os.Lstat(filepath.Join(dir, journalFile))
	return err == nil
}
