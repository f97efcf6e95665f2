package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/internal/linux"
)

func init() {
	register(newNetCmd)
}

func newNetCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "net",
		Short: "Emulated networks of sandboxed nodes (DieCast experiments)",
		Long: `vmux net brings up an experiment from a YAML spec: one sandbox per node (its own
network, pid, mount, uts and ipc namespaces and a cgroup with its CPU, memory and
disk shares) joined by a user-space link emulator. Needs root.`,
	}
	c.AddCommand(newNetUpCmd(), newNetStatusCmd(), newNetDownCmd())
	return c
}

func newNetUpCmd() *cobra.Command {
	var (
		dilate, asJSON bool
		noFreeze       bool
		lead           time.Duration
	)
	c := &cobra.Command{
		Use:   "up SPEC",
		Short: "Bring up the experiment described by SPEC (YAML)",
		Long: `Brings up the experiment SPEC describes and returns once it is up: the daemon
and every node's init run and every node answers on its exec socket. SPEC is
read once, and must be a regular file of at most 4 MiB. SIGINT or SIGTERM
during the bring-up tears down whatever was started.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t0 := time.Now()
			st, err := netd.UpContext(cmd.Context(), args[0], netd.UpOptions{Dilate: dilate, Lead: lead, NoTCPFreeze: noFreeze})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				s, err := netd.GetStatus(st.Name)
				if err != nil {
					return err
				}
				return writeJSON(w, netUpJSON{Status: s, Seconds: time.Since(t0).Seconds()})
			}
			fmt.Fprintf(w, "experiment %s up in %.2fs: %d nodes, tdf %g, subnet %s\n",
				st.Name, time.Since(t0).Seconds(), len(st.Nodes), st.TDF, st.Subnet)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tADDRESS\tINIT PID\tREACH IT WITH")
			for _, n := range st.Nodes {
				fmt.Fprintf(tw, "%s\t%s\t%d\tvmux exec --net %s %s -- CMD\n", n.Name, n.Address, n.Pid, st.Name, n.Name)
			}
			tw.Flush()
			if st.Launcher != "" {
				fmt.Fprintf(w, "every node process runs dilated at tdf %s on the experiment's one clock: vmux clock status|set|pause|resume %s\n",
					st.Factor, st.Name)
			}
			fmt.Fprintf(w, "status: vmux net status %s   stop: vmux net down %s   log: %s\n", st.Name, st.Name, st.LogFile)
			return nil
		},
	}
	c.Flags().BoolVar(&dilate, "dilate", false, "run every node process under time dilation at the spec's tdf (vmux run), on one virtual clock")
	c.Flags().BoolVar(&asJSON, "json", false, "print the experiment's status as JSON (as net status --json does, plus the bring-up time)")
	c.Flags().BoolVar(&noFreeze, "no-tcp-freeze", false, "with --dilate: do not freeze the nodes' TCP sockets across a clock pause (they then time out and retransmit; for baselines)")
	c.Flags().DurationVar(&lead, "lead", 50*time.Microsecond, "deliver packets this much early into nodes to cancel part of the TUN crossing cost (~100us each way here); 0 keeps the model exact")
	return c
}

// netUpJSON is what net up --json prints.
type netUpJSON struct {
	*netd.Status
	Seconds float64 `json:"up_seconds"`
}

// netDownJSON is one experiment net down --json reports.
type netDownJSON struct {
	Name    string  `json:"name"`
	Found   bool    `json:"found"`
	Seconds float64 `json:"seconds"`
}

func newNetStatusCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show running experiments, their nodes and link counters",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names := args
			if len(names) == 0 {
				all, err := netd.List()
				if err != nil {
					return err
				}
				names = all
			}
			var out []*netd.Status
			for _, n := range names {
				s, err := netd.GetStatus(n)
				if err != nil {
					return err
				}
				out = append(out, s)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if out == nil {
					out = []*netd.Status{}
				}
				return enc.Encode(out)
			}
			if len(out) == 0 {
				fmt.Fprintln(w, "no experiment is up (vmux net up SPEC)")
			}
			for _, s := range out {
				printStatus(w, s)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printStatus(w io.Writer, s *netd.Status) {
	health := "running"
	if !s.DaemonAlive {
		health = "DAEMON DEAD (vmux net down " + s.Name + " cleans up)"
	}
	fmt.Fprintf(w, "%s: %s, tdf %g, subnet %s, up since %s\n", s.Name, health, s.TDF, s.Subnet, s.Created.Local().Format(time.TimeOnly))
	if c := s.Clock; c != nil {
		state := "running"
		if c.Paused {
			state = "PAUSED"
		}
		fmt.Fprintf(w, "  clock: tdf %s, %s, virtual now %s (monotonic %.6f s)\n", c.TDF, state,
			time.Unix(0, c.VirtRealtime).Local().Format(time.RFC3339Nano), float64(c.VirtMonotonic)/1e9)
		if s.TCPFreeze != "" {
			last := ""
			if s.LastFreeze != nil {
				last = "; last pause: " + s.LastFreeze.String()
			}
			fmt.Fprintf(w, "  tcp freeze: %s%s\n", s.TCPFreeze, last)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tADDRESS\tINIT PID\tALIVE\tCPU\tMEMORY")
	for _, n := range s.Nodes {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%v\t%s\t%s\n", n.Name, n.Address, n.Pid, n.Alive, fmtCPU(n.CPU), fmtMem(n.Memory))
	}
	tw.Flush()
	if len(s.Config) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  LINK\tAS WRITTEN (VIRTUAL)\tAS APPLIED NOW (REAL, SCALED BY THE TDF IN FORCE)")
		for _, l := range s.Config {
			fmt.Fprintf(tw, "  %s->%s\t%s\t%s\n", l.From, l.To, l.Virtual, l.Real)
		}
		tw.Flush()
	}
	if s.Links != nil {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  LINK\tPACKETS\tBYTES\tSENT\tQUEUE DROPS\tLOSS DROPS\tFULL DROPS\tMEAN QUEUE DELAY")
		for _, l := range s.Links.Links {
			fmt.Fprintf(tw, "  %s->%s\t%d\t%d\t%d\t%d\t%d\t%d\t%v\n", l.From, l.To, l.Packets, l.Bytes, l.Sent, l.QueueDrops, l.LossDrops,
				l.InFlightDrops+l.MemoryDrops, l.MeanQueueDelay())
		}
		tw.Flush()
		// FULL DROPS: the link held its most bytes in flight, or the
		// emulator its most packet memory (netem.Options.MaxInFlight).
		fmt.Fprintf(w, "  emulator packet memory: %d of %d MiB (%d packets dropped for it)\n",
			s.Links.Memory>>20, s.Links.MaxInFlight>>20, s.Links.MemoryDrops)
	}
}

func fmtCPU(c float64) string {
	if c == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3g core", c)
}

func fmtMem(m int64) string {
	if m == 0 {
		return "-"
	}
	return fmt.Sprintf("%d MiB", m>>20)
}

func newNetDownCmd() *cobra.Command {
	var all, ignore, asJSON bool
	c := &cobra.Command{
		Use:   "down [NAME]",
		Short: "Tear an experiment down (works after a crash)",
		Long: `Tears experiment NAME down: stops its daemon, kills every process of its
nodes, removes its cgroups and run directory. It works after a crash of the
daemon. An experiment that is not up is an error (exit status 1) unless
--ignore-not-found is given; --all tears down every experiment. Once
started, a tear-down finishes (a few seconds at most) even if interrupted.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := linux.RequireRoot("vmux net down"); err != nil {
				return err
			}
			var names []string
			switch {
			case len(args) == 1:
				names = args
			case all:
				l, err := netd.List()
				if err != nil {
					return err
				}
				names = l
			default:
				n, err := netd.Resolve("")
				if errors.Is(err, netd.ErrNotFound) && ignore {
					return nil
				}
				if err != nil {
					return fmt.Errorf("%w (or pass --all)", err)
				}
				names = []string{n}
			}
			out := []netDownJSON{}
			var missing error
			for _, n := range names {
				t0 := time.Now()
				found, err := netd.Exists(n)
				if err != nil {
					return err
				}
				if err := netd.Down(n, 3*time.Second); err != nil {
					return err
				}
				out = append(out, netDownJSON{Name: n, Found: found, Seconds: time.Since(t0).Seconds()})
				switch {
				case !found && !ignore:
					missing = fmt.Errorf("down %s: %w (--ignore-not-found to accept that)", n, netd.ErrNotFound)
				case asJSON:
				case found:
					fmt.Fprintf(cmd.OutOrStdout(), "experiment %s down in %.2fs\n", n, time.Since(t0).Seconds())
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "experiment %s was not up\n", n)
				}
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			}
			return missing
		},
	}
	c.Flags().BoolVar(&all, "all", false, "tear down every experiment")
	c.Flags().BoolVar(&ignore, "ignore-not-found", false, "an experiment that is not up is not an error")
	c.Flags().BoolVar(&asJSON, "json", false, "print what was torn down as JSON")
	return c
}

func exitCode(c int) error {
	if c == 0 {
		return nil
	}
	return &ExitError{Code: c}
}
