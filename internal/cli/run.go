package cli

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vmux/vmux/dilate"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

func init() { register(newRunCmd) }

func newRunCmd() *cobra.Command {
	var (
		tdf, start, share, name string
		trapReads, verbose      bool
	)
	cmd := &cobra.Command{
		Use:   "run --tdf K [--start TIME] [--cpu SHARE] [--] CMD [ARGS...]",
		Short: "Run a program and its whole process tree at time-dilation factor K",
		Long: `Run CMD dilated: every process, thread, fork and exec of it perceives time K
times slower than real time (K < 1 speeds it up). Clock reads go through a
replacement vDSO; sleeps, timeouts and timers are rewritten in the kernel call.
The exit status and fatal signals of CMD pass through.

  vmux run --tdf 10 -- ./server --port 8080
  vmux run --tdf 0.5 --start 2030-01-01T00:00:00Z -- date`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := vclock.ParseTDF(tdf)
			if err != nil {
				return fmt.Errorf("parsing --tdf: %w", err)
			}
			cfg := vclock.Config{TDF: k}
			if share != "" {
				if cfg.Share, err = vclock.ParseShare(share); err != nil {
					return fmt.Errorf("parsing --cpu: %w", err)
				}
			}
			if start != "" {
				if cfg.Start, err = parseStart(start); err != nil {
					return err
				}
			}
			if _, err := dilate.Resolve(args[0]); err != nil {
				return err
			}
			log := slog.New(slog.DiscardHandler)
			if verbose {
				log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
			if name == "" {
				name = strconv.Itoa(os.Getpid())
			}
			clk, err := clock.New(name, cfg)
			if err != nil {
				return err
			}
			defer clk.Close()
			srv, err := clock.Serve(clk, clock.ServeOptions{Name: name, Kind: clock.KindRun, Logger: log})
			if err != nil {
				return fmt.Errorf("naming the run %s: %w (choose another --name)", name, err)
			}
			defer srv.Close()
			reads := dilate.ReadsVDSO
			if trapReads {
				reads = dilate.ReadsTrap
			}
			return runDilated(dilate.Config{
				Args: args, Clock: clk, ClockReads: reads, Logger: log,
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			})
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // flags after CMD belong to CMD
	f.StringVar(&tdf, "tdf", "", "time-dilation factor K: a positive number or fraction (10, 2.5, 0.5, 1/3)")
	f.StringVar(&start, "start", "", "virtual wall-clock time at start (RFC 3339, or @UNIXSECONDS); default: now")
	f.StringVar(&share, "cpu", "", "CPU share of one core in (0,1] for CPU-time clocks (default 1)")
	f.StringVar(&name, "name", "", "run name, for vmux clock to find this run (default: vmux's PID)")
	f.BoolVar(&trapReads, "trap-clock-reads", false, "trap every clock read as a syscall instead of mapping the replacement vDSO (slow)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log supervisor events to stderr")
	_ = cmd.MarkFlagRequired("tdf")
	return cmd
}

func parseStart(s string) (time.Time, error) {
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		sec, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("parsing --start %q: want @UNIXSECONDS such as @1700000000", s)
		}
		return time.Unix(0, int64(sec*1e9)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parsing --start %q: want RFC 3339 such as 2030-01-01T00:00:00Z, or @UNIXSECONDS", s)
	}
	return t, nil
}

// runDilated runs the supervisor, forwards termination signals, and passes
// the program's exit status or fatal signal through.
func runDilated(cfg dilate.Config) error {
	forwardSignals()
	sigs := make(chan os.Signal, 8)
	// Terminal-generated SIGINT/SIGQUIT already reach the program, which
	// shares our process group: forward them only when not on a terminal.
	fwd := []os.Signal{syscall.SIGTERM, syscall.SIGHUP}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		fwd = append(fwd, syscall.SIGINT, syscall.SIGQUIT)
	} else {
		signal.Ignore(syscall.SIGQUIT)
	}
	signal.Notify(sigs, fwd...)
	defer signal.Stop(sigs)
	sup, err := dilate.Start(cfg)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = sup.Signal(s.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	st, err := sup.Wait()
	if err != nil {
		return err
	}
	if st.Signal != 0 {
		// Die the same way, so a shell sees the same status (Main does it,
		// after every deferred cleanup of the command has run).
		return &ExitError{Code: 128 + int(st.Signal), Signal: st.Signal}
	}
	if st.Code != 0 {
		return &ExitError{Code: st.Code}
	}
	return nil
}
