package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/internal/linux"
)

func init() { register(newExecCmd) }

func newExecCmd() *cobra.Command {
	var netName string
	c := &cobra.Command{
		Use:   "exec [--net NAME] NODE -- CMD [ARG...]",
		Short: "Run a command inside a node of an experiment",
		Long: `vmux exec runs CMD inside NODE: in its namespaces and cgroup, started by the
node's init. stdin, stdout and stderr are passed as they are, or, when stdin and
stdout are a terminal, CMD gets a pseudo-terminal in the node relayed to yours
(raw mode). Signals are forwarded and the exit status is CMD's. --net may be
omitted when only one experiment is up.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := linux.RequireRoot("vmux exec"); err != nil {
				return err
			}
			name, err := netd.Resolve(netName)
			if err != nil {
				return err
			}
			st, err := netd.Load(name)
			if err != nil {
				return err
			}
			argv := args[1:]
			if argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return fmt.Errorf("exec: no command given: vmux exec NODE -- CMD [ARG...]")
			}
			n, err := st.Node(args[0])
			if err != nil {
				return err
			}
			if !st.DaemonAlive() {
				fmt.Fprintf(cmd.ErrOrStderr(), "vmux: warning: the daemon of %s is dead: the node runs but its network does not (vmux net down %s)\n", name, name)
			}
			if !node.Running(n.Pid, n.StartTime) {
				return fmt.Errorf("exec in %s: node %s is not running (see vmux net status %s; vmux net down %s cleans up)", name, n.Name, name, name)
			}
			forwardSignals()
			sigs := make(chan os.Signal, 8)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
			defer signal.Stop(sigs)
			// A terminal on stdin gets a pty in the node, relayed raw: keys
			// like ^C reach the command's terminal, not vmux.
			tty := term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
			if tty {
				old, err := term.MakeRaw(int(os.Stdin.Fd()))
				if err != nil {
					return fmt.Errorf("set terminal raw: %w", err)
				}
				defer term.Restore(int(os.Stdin.Fd()), old)
			}
			dir, _ := os.Getwd()
			es, err := node.Exec(n.Name, n.Socket, node.ExecOptions{
				Argv: argv, Env: os.Environ(), Dir: dir,
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Signals: sigs, TTY: tty,
			})
			switch {
			case errors.Is(err, node.ErrCommandNotFound):
				fmt.Fprintf(cmd.ErrOrStderr(), "vmux: %v\n", err)
				return &ExitError{Code: node.StatusNotFound}
			case errors.Is(err, node.ErrNotExecutable):
				fmt.Fprintf(cmd.ErrOrStderr(), "vmux: %v\n", err)
				return &ExitError{Code: node.StatusNotExecutable}
			case err != nil:
				return err
			}
			if es.Signal > 0 {
				// Die as the command did, like vmux run (see ExitError).
				return &ExitError{Code: es.ShellCode(), Signal: syscall.Signal(es.Signal)}
			}
			return exitCode(es.Code)
		},
	}
	c.Flags().StringVar(&netName, "net", "", "experiment name (default: the only one up)")
	c.Flags().SetInterspersed(false)
	return c
}
