package vdso

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vmux/vmux/internal/linux"
)

// ClockRef is a clock memfd found in a process.
type ClockRef struct {
	PID  int    // a process holding the memfd
	Path string // /proc/PID/fd/N, for OpenClock
	Name string // memfd name: ClockMemfdName[:run]
}

// Run is the run name of the clock ("" for an unnamed run).
func (r ClockRef) Run() string {
	_, run, _ := strings.Cut(r.Name, ":")
	return run
}

// FindClock resolves target to one clock memfd: a number is the PID of a
// `vmux run` supervisor (its own clock memfd), anything else a run name
// looked up in every process. Errors wrap ErrNoClock or ErrAmbiguous.
func FindClock(target string) (ClockRef, error) {
	if target == "" {
		return ClockRef{}, fmt.Errorf("finding clock: %w: give a supervisor PID or a run name", ErrNoClock)
	}
	if pid, err := strconv.Atoi(target); err == nil {
		refs, err := clocksOf(pid)
		if err != nil {
			return ClockRef{}, fmt.Errorf("finding clock of pid %d: %w", pid, err)
		}
		return one(refs, "pid "+target)
	}
	var all []ClockRef
	seen := map[uint64]bool{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		refs, _ := clocksOf(pid) // processes come and go; skip unreadable ones
		for _, r := range refs {
			ino, ok := inode(r.Path)
			if r.Run() != target || !ok || seen[ino] {
				continue
			}
			seen[ino] = true
			all = append(all, r)
		}
	}
	return one(all, "run "+strconv.Quote(target))
}

// ListClocks returns every clock memfd held by a process, one per memfd.
func ListClocks() []ClockRef {
	var all []ClockRef
	seen := map[uint64]bool{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		refs, _ := clocksOf(pid)
		for _, r := range refs {
			if ino, ok := inode(r.Path); ok && !seen[ino] {
				seen[ino] = true
				all = append(all, r)
			}
		}
	}
	return all
}

func one(refs []ClockRef, what string) (ClockRef, error) {
	switch len(refs) {
	case 0:
		return ClockRef{}, fmt.Errorf("finding clock of %s: %w (is `vmux run` running? see `vmux clock list`)", what, ErrNoClock)
	case 1:
		return refs[0], nil
	}
	pids := make([]string, len(refs))
	for i, r := range refs {
		pids[i] = strconv.Itoa(r.PID)
	}
	return ClockRef{}, fmt.Errorf("finding clock of %s: %w (pids %s): address one by supervisor PID", what, ErrAmbiguous, strings.Join(pids, ", "))
}

// clocksOf lists the vmux clock memfds in /proc/pid/fd.
func clocksOf(pid int) ([]ClockRef, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing fds: %w", err)
	}
	var refs []ClockRef
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		link, err := os.Readlink(p)
		if err != nil {
			continue
		}
		name, ok := linux.MemfdName(link)
		if !ok || (name != ClockMemfdName && !strings.HasPrefix(name, ClockMemfdName+":")) {
			continue
		}
		refs = append(refs, ClockRef{PID: pid, Path: p, Name: name})
	}
	return refs, nil
}

func inode(path string) (uint64, bool) { return linux.FileInode(path) }
