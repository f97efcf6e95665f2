package cli

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/vmux/vmux/internal/linux"
)

// newMemKSMExecCmd is the launcher the KSM baseline uses: it marks its own
// memory mergeable (prctl PR_SET_MEMORY_MERGE) and execs the program, which
// keeps the mark where the kernel carries it across execve (checked by the
// caller in /proc/PID/ksm_stat).
func newMemKSMExecCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "ksm-exec -- PROGRAM [ARGS...]",
		Short:  "Run PROGRAM with its memory marked mergeable by KSM (needs Linux 6.4+)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path, err := exec.LookPath(args[0])
			if err != nil {
				return fmt.Errorf("ksm-exec: %w", err)
			}
			if err := linux.SetMemoryMerge(true); err != nil {
				return fmt.Errorf("ksm-exec: %w", err)
			}
			return fmt.Errorf("ksm-exec %s: %w", path, syscall.Exec(path, args, os.Environ()))
		},
	}
}
