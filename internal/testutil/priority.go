package testutil

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// RaisePriority sets every thread of the test process to nice (e.g. -15)
// when running as root, and does nothing otherwise. Call it first in
// TestMain of packages whose tests measure real durations to a few ms:
// CI runs other packages' tests on the same cores, and threads created
// later (and processes they fork) inherit the value.
func RaisePriority(nice int) {
	if os.Geteuid() != 0 {
		return
	}
	tasks, _ := filepath.Glob("/proc/self/task/*")
	for _, task := range tasks {
		if tid, err := strconv.Atoi(filepath.Base(task)); err == nil {
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
		}
	}
}
