package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"context"

	"github.com/spf13/cobra"

	"github.com/vmux/vmux/internal/linux"
)

// Version is set at link time (-ldflags "-X .../cli.Version=...").
var Version = "dev"

// subcommands are the constructors registered by each command group's init.
var subcommands []func() *cobra.Command

// register adds a top-level command group. Call it from init.
func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

// ExitError carries a specific exit status out of a command (for example the
// status of a program run under vmux run) without printing anything more.
// With Signal set, vmux dies of that signal instead (default action, no core
// of its own), as GNU timeout and env do for a child killed by a signal;
// Code (128+Signal) is the fallback if it survives.
type ExitError struct {
	Code   int
	Signal syscall.Signal
}

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// NewRoot builds the vmux command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "vmux",
		Short: "Host more machines than the hardware allows",
		Long: `vmux multiplexes one Linux machine among more machines than it can hold:
  time dilation   run programs that perceive time k times slower (vmux run)
  DieCast         emulate a network of sandboxed nodes at scale (vmux net)
  Difference Eng. share, patch and compress memory pages (vmux mem)
Much of vmux needs root; commands that do say so and check first.`,
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	return root
}

// Main runs vmux with args and returns the process exit status.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Signal != 0 {
			stop()
			linux.DieOfSignal(ee.Signal)
		}
		return ee.Code
	}
	fmt.Fprintf(os.Stderr, "vmux: %v\n", err)
	return 1
}
