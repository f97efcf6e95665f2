package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem/ksm"
	"github.com/vmux/vmux/mem/store"
	"github.com/vmux/vmux/rt/guard"
)

func newMemDemoCmd() *cobra.Command {
	var f memFlags
	var asJSON, withKSM bool
	var d demoOpts
	c := &cobra.Command{
		Use:   "demo [flags]",
		Short: "Analyze a heterogeneous set of live processes that the demo starts itself",
		Long: `Starts several instances each of python3, redis-server, memcached, perl, nginx,
node and java (those installed), loads data into them (redis and memcached
through their protocols on unix sockets; nothing listens on the network),
waits for them to settle, analyzes all of them together and prints the table.
Every process it started is stopped on every exit path, Ctrl-C included.

--ksm also runs the kernel's KSM on the same processes as the baseline: they
are started through a launcher that sets prctl(PR_SET_MEMORY_MERGE), KSM is
switched to fast scanning (pages_to_scan 10000, sleep_millisecs 0) until it
converges, and what it merged is printed next to the analyzer's
KSM-equivalent. Every KSM setting changed is restored afterwards.

If the demo itself is killed (kill -9, the OOM killer), a small guard process
it started first kills its workloads and restores KSM (and any later vmux
command restores KSM settings a killed vmux left).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := linux.RequireRoot("mem demo"); err != nil {
				return err
			}
			return runDemo(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), f, asJSON, withKSM, d)
		},
	}
	f.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the analysis as JSON")
	c.Flags().BoolVar(&withKSM, "ksm", false, "also run real KSM on the same processes and report what it merged")
	c.Flags().DurationVar(&d.settle, "settle", 2*time.Second, "time to let the processes settle after loading")
	c.Flags().IntVar(&d.instances, "instances", 0, "instances of each program (default: 2 or 3 each)")
	c.Flags().StringVar(&d.pack, "pack", "", "also write the processes' memory to this store (vmux mem pack)")
	c.Flags().StringSliceVar(&d.only, "only", nil, "start only these programs (python3, redis, memcached, perl, nginx, node, java)")
	return c
}

// demoOpts choose the demo's mix.
type demoOpts struct {
	settle    time.Duration
	instances int
	only      []string
	pack      string // also write the processes to this store
}

// demoStarted, if set (by tests), is told the PID of every process started.
var demoStarted func(pid int)

func runDemo(ctx context.Context, stdout, stderr io.Writer, f memFlags, asJSON, withKSM bool, d demoOpts) (err error) {
	// A guard outlives the demo: if it is killed (SIGKILL, OOM) it kills
	// the workloads and puts KSM back. Registered first, so that on a
	// normal exit it ends last, after the demo's own cleanup, and finds
	// nothing left to do.
	g, err := guard.Start("")
	if err != nil {
		return err
	}
	defer func() {
		if gerr := g.Close(10 * time.Second); gerr != nil && err == nil {
			err = gerr
		}
	}()
	if withKSM {
		if err := g.Hook(ksm.GuardHook); err != nil {
			return err
		}
	}
	sweepDemoDirs()
	dir, err := os.MkdirTemp("", fmt.Sprintf("vmux-demo-%d-", os.Getpid()))
	if err != nil {
		return fmt.Errorf("create demo directory: %w", err)
	}
	defer os.RemoveAll(dir)
	var procs []*proc
	defer func() {
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop(2 * time.Second) }()
		}
		wg.Wait()
	}()

	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, w := range demoWorkloads() {
		if len(d.only) > 0 && !slices.Contains(d.only, w.name) {
			continue
		}
		if d.instances > 0 {
			w.n = d.instances
		}
		bin, lerr := exec.LookPath(w.bin)
		if lerr != nil {
			fmt.Fprintf(stderr, "demo: %s not installed, left out (make deps installs it)\n", w.bin)
			continue
		}
		for i := 0; i < w.n; i++ {
			args, serr := w.setup(dir, i)
			if serr != nil {
				return fmt.Errorf("set up %s %d: %w", w.name, i, serr)
			}
			p, serr := startProc(fmt.Sprintf("%s-%d", w.name, i), withKSM, bin, args, dir)
			if serr != nil {
				return serr
			}
			procs = append(procs, p)
			if err := g.Watch(p.cmd.Process.Pid); err != nil {
				return err
			}
			if demoStarted != nil {
				demoStarted(p.cmd.Process.Pid)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.err = w.ready(startCtx, dir, i, p.out)
			}()
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	var specs []string
	for _, p := range procs {
		if p.err != nil {
			fmt.Fprintf(stderr, "demo: %s did not become ready, left out: %v (log in its .log)\n", p.name, p.err)
			continue
		}
		specs = append(specs, fmt.Sprintf("pid:%d", p.cmd.Process.Pid))
	}
	if len(specs) == 0 {
		return errors.New("demo: no process became ready")
	}
	fmt.Fprintf(stderr, "demo: %d processes ready in %.1fs; settling %v\n", len(specs), time.Since(t0).Seconds(), d.settle)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d.settle):
	}
	a, err := analyze(ctx, specs, f, d.pack, stderr)
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeAnalysisJSON(stdout, a); err != nil {
			return err
		}
	} else {
		writeAnalysisTable(stdout, a)
	}
	if asJSON { // keep stdout one JSON document
		stdout = stderr
	}
	if d.pack != "" {
		info, err := store.Write(ctx, d.pack, a.res, a.metas)
		if err != nil {
			return err
		}
		t := a.res.Stats.Total
		fmt.Fprintf(stdout, "\nwrote %s: %s MiB for %s MiB of memory; payload %s MiB, metadata %s MiB (%s of memory, engine estimate %s MiB)\n",
			d.pack, mb(info.FileBytes), mb(t.TotalBytes), mb(info.PayloadBytes), mb(info.MetadataBytes),
			pct(info.MetadataBytes, t.TotalBytes), mb(t.MetadataBytes))
	}
	if withKSM {
		return runKSMBaseline(ctx, stdout, procs, a)
	}
	return nil
}

// runKSMBaseline runs real KSM over the demo's processes and prints what it
// merged next to the analyzer's KSM-equivalent. Every setting is restored
// on return.
func runKSMBaseline(ctx context.Context, w io.Writer, procs []*proc, a *analysis) (err error) {
	marked := 0
	for _, p := range procs {
		if p.err != nil {
			continue
		}
		if ok, err := ksm.MergeAny(p.cmd.Process.Pid); err != nil {
			return err
		} else if ok {
			marked++
		}
	}
	fmt.Fprintf(w, "\nKSM baseline: %d of %d processes are marked mergeable after exec (prctl PR_SET_MEMORY_MERGE)\n", marked, len(procs))
	if marked == 0 {
		return errors.New("KSM baseline: the PR_SET_MEMORY_MERGE mark did not survive execve on this kernel")
	}
	before, err := ksm.Read()
	if err != nil {
		return err
	}
	settings, err := ksm.Tune(map[string]string{"pages_to_scan": "10000", "sleep_millisecs": "0", "run": "1"})
	defer func() {
		if rerr := settings.Restore(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if err != nil {
		return err
	}
	t0 := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	st, cerr := ksm.Converge(cctx, 3, 200*time.Millisecond)
	if cerr != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	conv := "converged"
	if cerr != nil {
		conv = "did NOT converge within 60s; figures are a lower bound"
	}
	fmt.Fprintf(w, "KSM %s in %.1fs (%d full scans): pages_sharing %d, pages_shared %d, ksm_zero_pages %d, general_profit %s MiB\n",
		conv, time.Since(t0).Seconds(), st.FullScans-before.FullScans, st.PagesSharing, st.PagesShared, st.ZeroPages, mb(st.GeneralProfit))
	ks, r := a.res.Stats.KSM, a.resident()
	eq := ks.SavedBytes + ks.MetadataBytes - a.holeBytes() // resident pages, before KSM's metadata
	fmt.Fprintf(w, "KSM actually saved %s MiB ((pages_sharing + ksm_zero_pages) x 4 KiB); the analyzer's KSM-equivalent on the\n"+
		"  same processes' resident pages saves %s MiB before KSM's rmap metadata (%s MiB after)\n",
		mb(st.SavedBytes()), mb(eq), mb(r.IdenticalOnlySavedBytes))
	if st.SavedBytes() > 0 {
		fmt.Fprintf(w, "vmux's savings on resident pages (%s MiB) are %.2fx what KSM actually saved\n",
			mb(r.SavedBytes), float64(r.SavedBytes)/float64(st.SavedBytes()))
	}
	return nil
}

// sweepDemoDirs removes the directories of earlier demos whose vmux died
// without cleaning up (SIGKILL): each is named after its owner's PID. Its
// processes died with it (Pdeathsig); only their sockets and configs remain.
func sweepDemoDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "vmux-demo-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "vmux-demo-%d-", &pid); err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(d)
		}
	}
}
