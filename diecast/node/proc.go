package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// ProcStartTime is field 22 of /proc/PID/stat (start time in clock ticks
// since boot): with the pid it identifies a process across pid reuse.
func ProcStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read process start time: %w", err)
	}
	return parseStartTime(string(b))
}

// parseStartTime extracts field 22 from a /proc/PID/stat line; the command
// name (field 2) may hold spaces and parentheses, so split after the last ')'.
func parseStartTime(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat: no ')' in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after comm, want >= 20", len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// SameProcess reports whether pid is still the process that had start time
// start (false if it exited, even if the pid was reused).
func SameProcess(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := ProcStartTime(pid)
	return err == nil && st == start
}

// Running reports whether (pid, start) is still that process and has not
// exited (a zombie waiting for its parent to reap it has exited).
func Running(pid int, start uint64) bool { return SameProcess(pid, start) && !isZombie(pid) }

// KillAndWait SIGKILLs the process (pid, start) if it is still that process
// and waits up to timeout for it to disappear (or turn zombie, which the
// kernel reaps for non-children once their parent does).
func KillAndWait(pid int, start uint64, timeout time.Duration) error {
	if !SameProcess(pid, start) {
		return nil
	}
	if err := linux.Kill(pid, linux.SIGKILL); err != nil && !linux.IsNoProcess(err) {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	deadline := time.Now().Add(timeout)
	for SameProcess(pid, start) && !isZombie(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("kill %d: still running after %v", pid, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

// Destroy removes a node from its recorded state alone (after a crash of
// whoever started it): kills init (the kernel then kills the rest of its pid
// namespace), empties and removes the cgroups, removes the socket.
// Idempotent.
func Destroy(st State, timeout time.Duration) error {
	err := KillAndWait(st.Pid, st.StartTime, timeout)
	err = errors.Join(err, RemoveCgroups(st.Cgroups, timeout))
	if st.Socket != "" {
		if e := os.Remove(st.Socket); e != nil && !errors.Is(e, fs.ErrNotExist) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// oomScoreAdj reads the OOM-killer bias of the calling process.
func oomScoreAdj() (int, error) {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0, fmt.Errorf("read oom_score_adj: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// setOOMScoreAdj sets the OOM-killer bias of the calling process (-1000:
// never chosen; 0: the default). Lowering it needs CAP_SYS_RESOURCE.
func setOOMScoreAdj(v int) error {
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(v)), 0); err != nil {
		return fmt.Errorf("set oom_score_adj: %w", err)
	}
	return nil
}
