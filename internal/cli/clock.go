package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmux/vmux/dilate/vdso"
	"github.com/vmux/vmux/rt/vclock"
)

func init() { register(newClockCmd) }

func newClockCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "clock",
		Short: "Show or change the virtual clock of a running `vmux run`",
		Long: `Every ` + "`vmux run`" + ` has one virtual clock shared by all its processes. These
commands find it by the supervisor's PID or by the run's --name (TARGET may be
left out when exactly one run is going) and change it at once for every
process, without virtual time jumping or going backwards:

  vmux clock list
  vmux clock show web
  vmux clock set web --tdf 2.5
  vmux clock pause 4242
  vmux clock resume 4242`,
	}
	c.AddCommand(newClockListCmd(), newClockShowCmd(), newClockSetCmd(), newClockPauseCmd(true), newClockPauseCmd(false))
	return c
}

func newClockListCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the clocks of running dilated runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var infos []clockInfo
			for _, r := range vdso.ListClocks() {
				info, err := clockDescribe(r)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "vmux: %v\n", err)
					continue
				}
				infos = append(infos, info)
			}
			if asJSON {
				return clockWriteJSON(cmd.OutOrStdout(), infos)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PID\tRUN\tTDF\tSTATE\tCPU SHARE")
			for _, i := range infos {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i.PID, clockOrDash(i.Run), i.TDF, i.State, i.Share)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newClockShowCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show [PID|RUN]",
		Short: "Show a run's factor, state and virtual time",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := clockFind(args)
			if err != nil {
				return err
			}
			info, err := clockDescribe(ref)
			if err != nil {
				return err
			}
			if asJSON {
				return clockWriteJSON(cmd.OutOrStdout(), info)
			}
			clockPrintInfo(cmd.OutOrStdout(), info)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newClockSetCmd() *cobra.Command {
	var tdf string
	c := &cobra.Command{
		Use:   "set [PID|RUN] --tdf K",
		Short: "Change a running run's time-dilation factor",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := vclock.ParseTDF(tdf)
			if err != nil {
				return fmt.Errorf("parsing --tdf: %w", err)
			}
			return clockChange(cmd, args, func(c *vdso.Clock) (vclock.Params, error) { return c.SetTDF(k) })
		},
	}
	c.Flags().StringVar(&tdf, "tdf", "", "new time-dilation factor K (10, 2.5, 0.5, 1/3)")
	_ = c.MarkFlagRequired("tdf")
	return c
}

func newClockPauseCmd(pause bool) *cobra.Command {
	use, short := "resume [PID|RUN]", "Let a paused run's virtual time run again from where it froze"
	if pause {
		use, short = "pause [PID|RUN]", "Freeze a run's virtual time (sleeps begun meanwhile run at K)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return clockChange(cmd, args, func(c *vdso.Clock) (vclock.Params, error) {
				if pause {
					return c.Pause()
				}
				return c.Resume()
			})
		},
	}
}

// clockChange opens the target's clock, applies f and shows the result.
func clockChange(cmd *cobra.Command, args []string, f func(*vdso.Clock) (vclock.Params, error)) error {
	ref, err := clockFind(args)
	if err != nil {
		return err
	}
	clk, err := vdso.OpenClock(ref.Path, nil)
	if err != nil {
		return fmt.Errorf("opening clock of pid %d: %w (run as root or as the run's user)", ref.PID, err)
	}
	defer clk.Close()
	p, err := f(clk)
	if err != nil {
		return err
	}
	clockPrintInfo(cmd.OutOrStdout(), clockInfoOf(ref, p))
	return nil
}

// clockFind resolves the optional TARGET; without one, the only clock.
func clockFind(args []string) (vdso.ClockRef, error) {
	if len(args) == 1 {
		return vdso.FindClock(args[0])
	}
	refs := vdso.ListClocks()
	switch len(refs) {
	case 1:
		return refs[0], nil
	case 0:
		return vdso.ClockRef{}, fmt.Errorf("finding clock: %w: no `vmux run` is running", vdso.ErrNoClock)
	}
	return vdso.ClockRef{}, fmt.Errorf("finding clock: %w: %d runs are going; name one by PID or run name (vmux clock list)", vdso.ErrAmbiguous, len(refs))
}

// clockInfo is what show and list print.
type clockInfo struct {
	PID       int       `json:"pid"`
	Run       string    `json:"run,omitempty"`
	TDF       string    `json:"tdf"`
	State     string    `json:"state"`
	Share     string    `json:"cpu_share"`
	Virtual   time.Time `json:"virtual_realtime"`
	Real      time.Time `json:"real_realtime"`
	Monotonic float64   `json:"virtual_monotonic_s"`
}

func clockDescribe(r vdso.ClockRef) (clockInfo, error) {
	clk, err := vdso.OpenClock(r.Path, nil)
	if err != nil {
		if errors.Is(err, vdso.ErrWriterStuck) {
			return clockInfo{}, err
		}
		return clockInfo{}, fmt.Errorf("opening clock of pid %d: %w", r.PID, err)
	}
	defer clk.Close()
	p, err := clk.Load()
	if err != nil {
		return clockInfo{}, err
	}
	return clockInfoOf(r, p), nil
}

func clockInfoOf(r vdso.ClockRef, p vclock.Params) clockInfo {
	now := vdso.RealSource{}.Now()
	state := "running"
	if p.Paused {
		state = "paused"
	}
	return clockInfo{
		PID: r.PID, Run: r.Run(), TDF: p.TDF.String(), State: state, Share: p.Share.String(),
		Virtual:   time.Unix(0, p.Virt(vclock.Realtime, now[vclock.Realtime])),
		Real:      time.Unix(0, now[vclock.Realtime]),
		Monotonic: float64(p.Virt(vclock.Monotonic, now[vclock.Monotonic])) / 1e9,
	}
}

func clockPrintInfo(w io.Writer, i clockInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "pid\t%d\n", i.PID)
	fmt.Fprintf(tw, "run\t%s\n", clockOrDash(i.Run))
	fmt.Fprintf(tw, "tdf\t%s\n", i.TDF)
	fmt.Fprintf(tw, "state\t%s\n", i.State)
	fmt.Fprintf(tw, "cpu share\t%s\n", i.Share)
	fmt.Fprintf(tw, "virtual time\t%s (%+v from real)\n", i.Virtual.Format(time.RFC3339Nano), i.Virtual.Sub(i.Real).Round(time.Microsecond))
	fmt.Fprintf(tw, "virtual monotonic\t%.6f s\n", i.Monotonic)
	tw.Flush()
}

func clockOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clockWriteJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}
