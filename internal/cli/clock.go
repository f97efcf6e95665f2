package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

func init() { register(newClockCmd) }

func newClockCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "clock",
		Short: "Show or change the virtual clock of a `vmux run` or of a dilated experiment",
		Long: `Every ` + "`vmux run`" + ` and every dilated experiment (` + "`vmux net up --dilate`" + `) has one
virtual clock shared by all its processes (and, for an experiment, by its
links). These commands find it by name (the run's --name, the run's PID
when it has none, or the experiment's name; NAME may be left out when
exactly one clock is running) and change it at once for every process and
every packet in flight, without virtual time jumping or going backwards.
They talk to the clock's owner over its control socket (root only):

  vmux clock list
  vmux clock status web
  vmux clock set web --tdf 2.5
  vmux clock pause demo
  vmux clock resume demo`,
	}
	c.AddCommand(newClockListCmd(), newClockStatusCmd(), newClockSetCmd(), newClockPauseCmd(true), newClockPauseCmd(false))
	return c
}

func newClockListCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the running clocks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := linux.RequireRoot("vmux clock list"); err != nil {
				return err
			}
			names, err := clock.List()
			if err != nil {
				return err
			}
			infos := []clock.Status{}
			for _, n := range names {
				st, err := clock.Ask(n, clock.Request{Op: "status"})
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "vmux: %v\n", err)
					continue
				}
				infos = append(infos, st)
			}
			if asJSON {
				return clockWriteJSON(cmd.OutOrStdout(), infos)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tOWNER PID\tTDF\tSTATE\tCPU SHARE")
			for _, i := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", i.Name, i.Kind, i.Pid, i.TDF, clockState(i), i.Share)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newClockStatusCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "status [NAME]",
		Aliases: []string{"show"},
		Short:   "Show a clock's factor, state and virtual time",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return clockDo(cmd, args, clock.Request{Op: "status"}, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newClockSetCmd() *cobra.Command {
	var tdf string
	var asJSON bool
	c := &cobra.Command{
		Use:   "set [NAME] --tdf K",
		Short: "Change a running clock's time-dilation factor",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := vclock.ParseTDF(tdf)
			if err != nil {
				return fmt.Errorf("parsing --tdf: %w", err)
			}
			return clockDo(cmd, args, clock.Request{Op: "set", TDF: k.String()}, asJSON)
		},
	}
	c.Flags().StringVar(&tdf, "tdf", "", "new time-dilation factor K (10, 2.5, 0.5, 1/3)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = c.MarkFlagRequired("tdf")
	return c
}

func newClockPauseCmd(pause bool) *cobra.Command {
	var asJSON bool
	use, short, op := "resume [NAME]", "Let a paused clock run again from where it froze", "resume"
	if pause {
		use, short, op = "pause [NAME]", "Freeze a clock: no virtual time passes, no timer expires, no packet moves", "pause"
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return clockDo(cmd, args, clock.Request{Op: op}, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// clockDo finds the target clock, sends req and shows the answer.
func clockDo(cmd *cobra.Command, args []string, req clock.Request, asJSON bool) error {
	if err := linux.RequireRoot("vmux clock " + req.Op); err != nil {
		return err
	}
	target := ""
	if len(args) == 1 {
		target = args[0]
	}
	name, err := clock.Find(target)
	if err != nil {
		return err
	}
	st, err := clock.Ask(name, req)
	if err != nil {
		return err
	}
	if asJSON {
		return clockWriteJSON(cmd.OutOrStdout(), st)
	}
	clockPrint(cmd.OutOrStdout(), st)
	return nil
}

func clockState(st clock.Status) string {
	if st.Paused {
		return "paused"
	}
	return "running"
}

func clockPrint(w io.Writer, st clock.Status) {
	virt, real := time.Unix(0, st.VirtRealtime), time.Unix(0, st.RealRealtime)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name\t%s\n", st.Name)
	fmt.Fprintf(tw, "kind\t%s\n", st.Kind)
	fmt.Fprintf(tw, "owner pid\t%d\n", st.Pid)
	fmt.Fprintf(tw, "tdf\t%s\n", st.TDF)
	fmt.Fprintf(tw, "state\t%s\n", clockState(st))
	fmt.Fprintf(tw, "cpu share\t%s\n", st.Share)
	fmt.Fprintf(tw, "virtual time\t%s (%+v from real)\n", virt.Format(time.RFC3339Nano), virt.Sub(real).Round(time.Microsecond))
	fmt.Fprintf(tw, "virtual monotonic\t%.6f s\n", float64(st.VirtMonotonic)/1e9)
	tw.Flush()
}

func clockWriteJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}
