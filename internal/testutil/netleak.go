package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Leaks lists what an experiment or node created, for CheckNoLeaks.
type Leaks struct {
	Pids        []int    // processes that must be gone (or zombies)
	NetnsInodes []uint64 // network namespaces no process, fd or mount may hold
	Paths       []string // files, directories and cgroup directories that must be gone
}

// CheckNoLeaks fails t if anything in l survives after a short grace period
// (the kernel tears namespaces and cgroups down asynchronously).
func CheckNoLeaks(t testing.TB, l Leaks) {
	t.Helper()
	var found []string
	deadline := time.Now().Add(3 * time.Second)
	for {
		found = found[:0]
		for _, pid := range l.Pids {
			if alive(pid) {
				found = append(found, fmt.Sprintf("process %d", pid))
			}
		}
		for _, p := range l.Paths {
			if _, err := os.Lstat(p); err == nil {
				found = append(found, "path "+p)
			}
		}
		for _, ino := range l.NetnsInodes {
			found = append(found, NetnsHolders(ino)...)
		}
		if len(found) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(found) > 0 {
		t.Errorf("left behind: %s", strings.Join(found, "; "))
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

// NetnsHolders describes every holder of the network namespace with inode
// ino: a process inside it, an open fd to it, or a bind mount of it.
func NetnsHolders(ino uint64) []string {
	want := fmt.Sprintf("net:[%d]", ino)
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); l == want {
			out = append(out, fmt.Sprintf("netns %d: process %d inside", ino, pid))
			continue
		}
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			if l, _ := os.Readlink(fd); l == want {
				out = append(out, fmt.Sprintf("netns %d: fd %s", ino, fd))
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), want) {
		out = append(out, fmt.Sprintf("netns %d: bind mount", ino))
	}
	return out
}

// CgroupDirsNamed lists cgroup directories (any v1 hierarchy or v2) whose
// path contains name, e.g. "vmux/<experiment>".
func CgroupDirsNamed(name string) []string {
	var out []string
	for _, r := range []string{"/sys/fs/cgroup"} {
		_ = filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.Contains(p, name) {
				out = append(out, p)
				return filepath.SkipDir
			}
			if strings.Count(p, "/") > 6 { // <root>/<ctrl>/vmux/<exp>/<node>: no deeper
				return filepath.SkipDir
			}
			return nil
		})
	}
	return out
}

// InterfacesNamed lists the network interfaces of the caller's network
// namespace whose names start with prefix (vmux never leaves one in the
// host namespace: node TUNs live and die in their node's namespace).
func InterfacesNamed(prefix string) []string {
	ents, _ := os.ReadDir("/sys/class/net")
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
