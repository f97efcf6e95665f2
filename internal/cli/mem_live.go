package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/live"
)

// liveDir is the state directory (a hidden flag, for tests).
var liveDir string

func newMemLiveCmd() *cobra.Command {
	var (
		f          memFlags
		o          live.Options
		foreground bool
	)
	c := &cobra.Command{
		Use:   "live PID...",
		Short: "Free the memory of running processes: share, patch and compress their cold pages",
		Long: `Attaches to running processes (QEMU and other VMMs included: their guest RAM is
process memory) without restarting them. Pages not written for --cold (and not
read: pages that come back soon after being taken are kept longer) leave the
process, stored as shared, patched or compressed in a store under
/run/vmux/live, and are rebuilt exactly when the process touches them again.
Nothing is shared or used as a reference across trust domains (a process's
domain is uid:<uid>) unless --cross-domain.

The engine runs in the background (--foreground keeps it in this command);
more processes can be added with another vmux mem live PID. status reports
what it saved, stop gives every page back. If the engine is killed, the
processes' faults wait (their pages are in the store, their userfaultfd stays
open in them) until vmux mem live recover serves them again.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := linux.RequireRoot("vmux mem live"); err != nil {
				return err
			}
			pids, err := parsePids(args)
			if err != nil {
				return err
			}
			o.Dir, o.Mem = liveDir, f.config()
			if foreground {
				return runLiveForeground(c, o, pids, f.domain)
			}
			if _, running := live.Owner(liveDir); !running {
				if live.HasState(liveDir) {
					return errors.New("a live engine died holding pages: run vmux mem live recover first")
				}
				pid, err := live.Start(o)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.ErrOrStderr(), "live engine started (pid %d)\n", pid)
			}
			return liveAttach(c.OutOrStdout(), pids, f.domain)
		},
	}
	c.Flags().StringVar(&f.detector, "detector", "", "similarity detector: "+strings.Join(mem.Detectors(), ", ")+" (default "+mem.DefaultDetector+")")
	c.Flags().StringVar(&f.codec, "codec", "", "compression codec: "+strings.Join(mem.Codecs(), ", ")+" (default "+mem.DefaultCodec+")")
	c.Flags().BoolVar(&f.cross, "cross-domain", false, "share and patch across trust domains (a timing side channel between tenants)")
	c.Flags().StringVar(&f.domain, "domain", "", "put the given processes in this one trust domain")
	c.Flags().DurationVar(&o.Cold, "cold", 30*time.Second, "how long a page must go untouched before it leaves its process")
	c.Flags().Float64Var(&o.CPU, "cpu", 0.5, "share of one CPU the engine may spend taking pages out")
	c.Flags().BoolVar(&foreground, "foreground", false, "run the engine in this command (Ctrl-C gives every page back)")
	c.PersistentFlags().StringVar(&liveDir, "dir", live.DefaultDir, "state directory")
	c.PersistentFlags().MarkHidden("dir")
	c.AddCommand(newMemLiveStatusCmd(), newMemLiveStopCmd(), newMemLiveRecoverCmd())
	return c
}

func parsePids(args []string) ([]int, error) {
	var pids []int
	for _, a := range args {
		pid, err := strconv.Atoi(strings.TrimPrefix(a, "pid:"))
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("%q is not a PID", a)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

func liveAttach(w io.Writer, pids []int, domain string) error {
	resp, err := live.Call(liveDir, live.Request{Op: "attach", Pids: pids, Domain: domain}, 0)
	if err != nil {
		return err
	}
	for _, e := range resp.Errors {
		fmt.Fprintln(w, "vmux:", e)
	}
	if !resp.OK {
		if resp.Error != "" {
			return errors.New(resp.Error)
		}
		return fmt.Errorf("%d of %d processes not attached", len(resp.Errors), len(pids))
	}
	fmt.Fprintf(w, "managing %d processes; vmux mem live status to see what they save\n", len(pids))
	return nil
}

func runLiveForeground(c *cobra.Command, o live.Options, pids []int, domain string) error {
	errc := make(chan error, 1)
	go func() {
		errc <- live.Run(c.Context(), o, func(err error) {
			if err != nil {
				return
			}
			if err := liveAttach(c.OutOrStdout(), pids, domain); err != nil {
				fmt.Fprintln(c.ErrOrStderr(), "vmux:", err)
			}
			fmt.Fprintln(c.ErrOrStderr(), "serving; Ctrl-C gives every page back")
		})
	}()
	return <-errc
}

func newMemLiveStatusCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "What the live engine holds and saves, per process and in total",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			resp, err := live.Call(liveDir, live.Request{Op: "status"}, 30*time.Second)
			if err != nil {
				if live.HasState(liveDir) {
					return errors.New("the live engine died holding pages: run vmux mem live recover")
				}
				return err
			}
			if resp.Status == nil {
				return errors.New(resp.Error)
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), resp.Status)
			}
			writeLiveStatus(c.OutOrStdout(), resp.Status)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (keys in docs/store-format.md)")
	return c
}

func newMemLiveStopCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stop [PID...]",
		Short: "Give every page back and detach (from the given processes, or all and end the engine)",
		RunE: func(c *cobra.Command, args []string) error {
			pids, err := parsePids(args)
			if err != nil {
				return err
			}
			req := live.Request{Op: "stop"}
			if len(pids) > 0 {
				req = live.Request{Op: "detach", Pids: pids}
			}
			resp, err := live.Call(liveDir, req, 0)
			if err != nil {
				return err
			}
			for _, e := range resp.Errors {
				fmt.Fprintln(c.ErrOrStderr(), "vmux:", e)
			}
			if !resp.OK {
				if resp.Error != "" {
					return fmt.Errorf("stop: %s (the store stays: vmux mem live recover serves it again)", resp.Error)
				}
				return errors.New("stop: some processes were not detached")
			}
			fmt.Fprintln(c.OutOrStdout(), "every page given back")
			return nil
		},
	}
}

func newMemLiveRecoverCmd() *cobra.Command {
	var cold time.Duration
	var cpu float64
	c := &cobra.Command{
		Use:   "recover",
		Short: "Serve again the pages a killed live engine held",
		Long: `Starts a live engine over the store a dead one left in /run/vmux/live: every
process it managed gets its pages served again (their faults waited meanwhile),
pages caught in flight are put back, and the engine goes on as before
(stop gives everything back).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := linux.RequireRoot("vmux mem live recover"); err != nil {
				return err
			}
			if pid, running := live.Owner(liveDir); running {
				return fmt.Errorf("%w (pid %d): nothing to recover", live.ErrRunning, pid)
			}
			if !live.HasState(liveDir) {
				return live.ErrNothingToRecover
			}
			pid, err := live.Start(live.Options{Config: live.Config{Dir: liveDir, Cold: cold, CPU: cpu}, Recover: true})
			if err != nil {
				return err
			}
			resp, err := live.Call(liveDir, live.Request{Op: "status"}, 30*time.Second)
			if err != nil || resp.Status == nil {
				return fmt.Errorf("recovered engine (pid %d) does not answer: %v", pid, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "live engine recovered (pid %d): %d pages of %d processes served again\n",
				pid, resp.Status.PagesHeld, len(resp.Status.Processes))
			return nil
		},
	}
	c.Flags().DurationVar(&cold, "cold", 30*time.Second, "cold time from now on")
	c.Flags().Float64Var(&cpu, "cpu", 0.5, "share of one CPU the engine may spend")
	return c
}

func writeLiveStatus(w io.Writer, s *live.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PID\tNAME\tDOMAIN\tRSS BEFORE\tRSS NOW\tHELD MiB\tZERO\tSHARED\tPATCHED\tCOMPR\tRAW\tFAULTS\tP50 us\tP99 us\tHOT\tCOLD s\t")
	ps := append([]live.ProcessStatus(nil), s.Processes...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].Pid < ps[j].Pid })
	for _, p := range ps {
		name := p.Name
		if p.ForkChild {
			name += " (fork)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%d\t%.0f\t\n", p.Pid, name, p.Domain,
			mb(p.RSSBefore), mb(p.RSSNow), mb(p.PagesHeld*mem.PageSize), p.Held.Zero, p.Held.Shared, p.Held.Patched,
			p.Held.Compressed, p.Held.Raw, p.Faults, p.FaultP50us, p.FaultP99us, p.CameBackHot, p.ColdSeconds)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nheld %s MiB (%d pages) of %d processes; the store costs %s MiB (payload %s, journal %s, engine %s)\n",
		mb(s.FreedBytes), s.PagesHeld, len(s.Processes), mb(s.StoreBytes), mb(s.StorePayloadBytes), mb(s.JournalBytes), mb(s.EngineBytes))
	fmt.Fprintf(w, "net saved on the host: %s MiB\n", mb(s.NetSavedBytes))
	fmt.Fprintf(w, "faults served: %d, p50 %.0f us, p99 %.0f us; came back hot: %d; engine CPU %.1f s in %.0f s (%s, %s%s)\n",
		s.Faults, s.FaultP50us, s.FaultP99us, s.CameBackHot, s.CPUSeconds, s.Uptime, s.Detector, s.Codec,
		map[bool]string{true: ", cross-domain", false: ""}[s.CrossDomain])
}
