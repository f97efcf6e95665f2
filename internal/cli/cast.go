package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmux/vmux/diecast/cast"
	"github.com/vmux/vmux/internal/linux"
)

func init() { register(newCastCmd) }

func newCastCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "cast",
		Short: "DieCast experiments: run a system as a scale model next to its baseline, and report fidelity",
		Long: `vmux cast runs the workload of an experiment spec (a vmux net spec with a workload:
section) in three modes and compares them:
  baseline  the spec as written, at TDF 1 (the system being modelled)
  scaled    DieCast at TDF k: CPU shares, disk rates and bandwidths / k, latencies x k,
            every node process dilated: each node perceives the spec's machine
  naive     the same reduced resources, no dilation (what packing alone gives)
Every run's samples, its keep-up record and the report go to one directory.`,
	}
	c.AddCommand(newCastRunCmd(), newCastReportCmd())
	return c
}

func newCastRunCmd() *cobra.Command {
	var (
		modes  []string
		tdfs   []string
		repeat int
		dir    string
		asJSON bool
		tcp    string
	)
	c := &cobra.Command{
		Use:   "run SPEC",
		Short: "Run an experiment's workload in each mode (default: baseline, scaled and naive at k=4)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := linux.RequireRoot("vmux cast run"); err != nil {
				return err
			}
			e, err := cast.Load(args[0])
			if err != nil {
				return err
			}
			ks, err := parseTDFs(tdfs, e.Net.TDF.Float64())
			if err != nil {
				return err
			}
			plan, err := cast.Plan(splitList(modes), ks)
			if err != nil {
				return err
			}
			if dir == "" {
				dir = fmt.Sprintf("cast-%s-%s", e.Net.Name, time.Now().Format("20060102-150405"))
			}
			errw := cmd.ErrOrStderr()
			pr := newCastProgress(errw)
			if tcp != "scaled" && tcp != "kernel" {
				return fmt.Errorf("--tcp %q: give scaled or kernel", tcp)
			}
			_, err = cast.Run(cmd.Context(), e, cast.Options{Modes: plan, Repeat: repeat, Dir: dir, Progress: pr.update, NoTCPScaling: tcp == "kernel"})
			pr.clear()
			if err != nil && !isCancel(err) {
				return err
			}
			rep, rerr := cast.LoadReport(dir)
			if rerr != nil {
				if err != nil {
					return err
				}
				return rerr
			}
			b, jerr := rep.JSON()
			if jerr == nil {
				jerr = os.WriteFile(dir+"/report.json", append(b, '\n'), 0o600)
			}
			if jerr != nil {
				return jerr
			}
			w := cmd.OutOrStdout()
			if asJSON {
				_, _ = w.Write(append(b, '\n'))
			} else {
				if err := rep.WriteTable(w); err != nil {
					return err
				}
				fmt.Fprintf(w, "\nsamples and report: %s (vmux cast report %s --html report.html)\n", dir, dir)
			}
			if err != nil {
				return fmt.Errorf("cast run interrupted: %w (the runs done so far are in %s)", err, dir)
			}
			return nil
		},
	}
	c.Flags().StringSliceVar(&modes, "mode", nil, "mode to run: baseline, scaled or naive (repeat or comma-separate; default all three)")
	c.Flags().StringSliceVar(&tdfs, "tdf", nil, "time-dilation factor k of the scaled and naive modes (repeat for several; default the spec's tdf if > 1, else 4); auto: a scaled run whose k follows what the host keeps up with")
	c.Flags().IntVar(&repeat, "repeat", 0, "runs per mode (default: the spec's workload.repeat, else 1)")
	c.Flags().StringVarP(&dir, "output", "o", "", "results directory, created (default cast-NAME-TIME)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON instead of the table")
	c.Flags().StringVar(&tcp, "tcp", "scaled", "scaled mode's node TCP timers: scaled (per-netns time sysctls x k) or kernel (left at the defaults)")
	return c
}

func isCancel(err error) bool {
	return errors.Is(err, context.Canceled)
}

func splitList(l []string) []string {
	var out []string
	for _, s := range l {
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func parseTDFs(l []string, specTDF float64) ([]float64, error) {
	var out []float64
	for _, s := range splitList(l) {
		if s == "auto" {
			out = append(out, 0) // cast.Plan: an auto scaled mode
			continue
		}
		k, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("--tdf %q: give a number >= 1", s)
		}
		out = append(out, k)
	}
	if len(out) == 0 && specTDF > 1 {
		out = []float64{specTDF}
	}
	return out, nil
}

func newCastReportCmd() *cobra.Command {
	var (
		asJSON bool
		html   string
	)
	c := &cobra.Command{
		Use:   "report DIR",
		Short: "Print the fidelity report of a results directory (table, --json, --html FILE)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := cast.LoadReport(args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if html != "" {
				b, err := rep.HTML()
				if err != nil {
					return err
				}
				if err := os.WriteFile(html, b, 0o600); err != nil {
					return fmt.Errorf("write html report: %w", err)
				}
			}
			if asJSON {
				b, err := rep.JSON()
				if err != nil {
					return err
				}
				_, err = w.Write(append(b, '\n'))
				return err
			}
			if err := rep.WriteTable(w); err != nil {
				return err
			}
			if html != "" {
				fmt.Fprintf(w, "html report: %s\n", html)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&html, "html", "", "also write an HTML page with the plots to FILE")
	return c
}

// castProgress shows the current run on one terminal line.
type castProgress struct {
	w    io.Writer
	on   bool
	last time.Time
	p    cast.Progress
}

func newCastProgress(w io.Writer) *castProgress { return &castProgress{w: w, on: isTerminal(w)} }

func (c *castProgress) update(p cast.Progress) {
	if p.Phase == "done" && p.Result != nil {
		if c.on {
			fmt.Fprint(c.w, "\r\033[K")
		}
		st := "valid"
		if !p.Result.Valid {
			st = "NOT VALID: " + strings.Join(p.Result.Reasons, "; ")
		}
		fmt.Fprintf(c.w, "run %d/%d %s rep %d/%d: %.1fs virtual, %.1fs real, %d samples, %s\n", p.Run, p.Runs, p.Mode, p.Rep, p.Reps,
			p.Result.VirtualSeconds, p.Result.RealSeconds, p.Result.Samples, st)
		return
	}
	if !c.on || time.Since(c.last) < 100*time.Millisecond && p.Phase == c.p.Phase {
		c.p = p
		return
	}
	c.last, c.p = time.Now(), p
	ev := p.Event
	if len(ev) > 50 {
		ev = ev[:50]
	}
	fmt.Fprintf(c.w, "\r\033[Krun %d/%d %s rep %d/%d %s: virtual %.1fs real %.1fs  %s", p.Run, p.Runs, p.Mode, p.Rep, p.Reps, p.Phase,
		p.Virtual.Seconds(), p.Real.Seconds(), ev)
}

func (c *castProgress) clear() {
	if c.on {
		fmt.Fprint(c.w, "\r\033[K")
	}
}
