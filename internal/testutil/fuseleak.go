package testutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MountsOfType lists the mounts of file system type fstype (the mountinfo
// field, e.g. "fuse.vmux-disk") in any mount namespace of the host (one
// /proc/PID/mountinfo per namespace), as "pid PID: MOUNTPOINT".
func MountsOfType(fstype string) []string {
	seen := map[string]bool{}
	var out []string
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range pids {
		ns, err := os.Readlink(p + "/ns/mnt")
		if err != nil || seen[ns] {
			continue
		}
		seen[ns] = true
		b, err := os.ReadFile(p + "/mountinfo")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			_, rest, ok := strings.Cut(line, " - ")
			if f := strings.Fields(rest); ok && len(f) > 0 && f[0] == fstype {
				out = append(out, fmt.Sprintf("pid %s: %s", filepath.Base(p), strings.Fields(line)[4]))
			}
		}
	}
	return out
}

// ProcessesNamed lists the processes whose argv[0] is name (vmux helpers
// are named vmux-ROLE).
func ProcessesNamed(name string) []int {
	var out []int
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range pids {
		b, err := os.ReadFile(p + "/cmdline")
		if err != nil {
			continue
		}
		if a, _, _ := bytes.Cut(b, []byte{0}); string(a) == name {
			if pid, err := strconv.Atoi(filepath.Base(p)); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}
