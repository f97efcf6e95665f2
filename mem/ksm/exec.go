package ksm

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/reexec"
)

// ExecRole is the reexec role of the launcher the KSM baseline uses: it
// marks its own memory mergeable (prctl PR_SET_MEMORY_MERGE) and execs
// PROGRAM ARGS..., which keeps the mark where the kernel carries it across
// execve (Linux 6.4+; the caller checks /proc/PID/ksm_stat).
const ExecRole = "ksm-exec"

func init() {
	reexec.Register(ExecRole, func(args []string) int {
		if err := execMergeable(args); err != nil {
			fmt.Fprintf(os.Stderr, "vmux ksm-exec: %v\n", err)
		}
		return 127
	})
}

// Command returns a command that runs program with args with its memory
// marked mergeable from its first instruction.
func Command(program string, args ...string) *exec.Cmd {
	return reexec.Command("", ExecRole, append([]string{program}, args...)...)
}

func execMergeable(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no program given")
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	if err := linux.SetMemoryMerge(true); err != nil {
		return err
	}
	return fmt.Errorf("exec %s: %w", path, syscall.Exec(path, args, os.Environ()))
}
