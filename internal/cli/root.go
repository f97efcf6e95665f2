package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem/ksm"
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

// Interrupted is the cause of a command's context when SIGINT or SIGTERM
// arrived: commands stop what they do, clean up, and return an error
// wrapping context.Canceled; Main then reports it and dies of the signal.
type Interrupted struct{ Signal syscall.Signal }

func (e *Interrupted) Error() string { return "interrupted by " + signalName(e.Signal) }

// Main runs vmux with args and returns the process exit status.
//
// The first SIGINT or SIGTERM cancels the command's context (cause
// *Interrupted): every long command stops and cleans up, then vmux dies of
// that signal (so a shell or timeout(1) sees it, as for any program
// interrupted). A second signal kills vmux at once, without waiting for
// the cleanup. Commands that forward signals to a program (vmux run, vmux
// exec) call forwardSignals first: Main then leaves every signal to them.
func Main(args []string) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		first := true
		for s := range sigs {
			switch {
			case forwarding.Load():
			case first:
				first = false
				cancel(&Interrupted{Signal: s.(syscall.Signal)})
			default:
				linux.DieOfSignal(s.(syscall.Signal))
			}
		}
	}()
	// KSM settings that a vmux killed with SIGKILL left tuned (its guard
	// was killed too, or never ran) are put back by the next vmux of any
	// kind: one stat when there is nothing to do.
	if err := ksm.RecoverStale(); err != nil {
		fmt.Fprintf(os.Stderr, "vmux: warning: restoring the KSM settings a killed vmux left: %v\n", err)
	}
	root := NewRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var intr *Interrupted
	if err != nil && errors.Is(err, context.Canceled) && errors.As(context.Cause(ctx), &intr) {
		if err.Error() == context.Canceled.Error() {
			fmt.Fprintf(os.Stderr, "vmux: %v\n", intr)
		} else {
			fmt.Fprintf(os.Stderr, "vmux: %v (%v)\n", err, intr)
		}
		linux.DieOfSignal(intr.Signal)
	}
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Signal != 0 {
			linux.DieOfSignal(ee.Signal)
		}
		return ee.Code
	}
	fmt.Fprintf(os.Stderr, "vmux: %v\n", err)
	return 1
}

// forwarding is set by commands that forward SIGINT and SIGTERM to the
// program they run: Main neither cancels them nor kills vmux on a second
// signal.
var forwarding atomic.Bool

// forwardSignals hands SIGINT and SIGTERM over to the calling command.
func forwardSignals() { forwarding.Store(true) }

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}
