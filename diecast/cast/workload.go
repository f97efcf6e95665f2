package cast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/diecast/tcprto"
)

// workload executes one run's items on a running experiment.
type workload struct {
	r       *run
	st      *netd.State
	scratch string // per-run scratch: nodes/<node> (cwd), shared/
	t0      time.Time
	tm      *timeMap
	rto     *tcprto.Scaler // scaled mode's initial RTO, follows k (nil: none)

	mu       sync.Mutex // guards the fields below
	execs    []Execution
	records  []Record
	timeline []KeepupSample
	real     time.Duration
	virtual  float64
	changes  []TDFChange
}

func newWorkload(r *run, st *netd.State, scratch string) *workload {
	return &workload{r: r, st: st, scratch: scratch}
}

// makeScratch fills a run's scratch directory dir: nodes/<node> for each
// node (its commands' working directory) and shared/. The caller made dir
// (writable in every node) and removes it after the experiment is down
// (nothing then writes into it).
func makeScratch(dir string, st *netd.State) error {
	for _, n := range st.Nodes {
		if err := os.MkdirAll(filepath.Join(dir, "nodes", n.Name), 0o700); err != nil {
			return fmt.Errorf("create scratch dir: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "shared"), 0o700); err != nil {
		return fmt.Errorf("create scratch dir: %w", err)
	}
	return nil
}

// virt converts a real instant to virtual seconds since the start.
func (w *workload) virt(t time.Time) float64 { return w.tm.virt(t) }

// realOf converts a virtual duration to the real time it lasts at the
// factor in force.
func (w *workload) realOf(d time.Duration) time.Duration { return time.Duration(float64(d) * w.tm.k()) }

func (w *workload) event(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.r.o.Logger.Info(msg, "mode", w.r.m.String(), "rep", w.r.rep)
	now := time.Now()
	w.r.progress(Progress{Phase: "run", Event: msg, Real: now.Sub(w.t0), Virtual: time.Duration(w.virt(now) * 1e9)})
}

func (w *workload) record(it *Item, nodeName string, iter int, s []Sample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, x := range s {
		w.records = append(w.records, Record{Metric: it.Name + "." + x.Metric, Value: x.Value, Unit: x.Unit, Node: nodeName, Iter: iter})
	}
}

// run starts services and jobs in order and waits for every job, the
// workload timeout, a failure or ctx. Services are stopped at the end.
func (w *workload) run(ctx context.Context) error {
	w.t0 = time.Now()
	w.tm = newTimeMap(w.t0, w.r.m.Factor())
	mon := newMonitor(w.st, w.r.o.MonitorEvery, w.t0, w.tm)
	mon.start()
	defer func() {
		w.timeline = mon.Stop()
	}()
	if w.r.m.Auto {
		stopAuto := w.autoTDF(mon)
		defer stopAuto()
	}

	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	tctx, tcancel := context.WithTimeoutCause(rctx, w.realOf(w.r.e.Timeout),
		fmt.Errorf("%w after %v of virtual time", ErrTimeout, w.r.e.Timeout))
	defer tcancel()
	// svcCtx outlives the jobs: services stop when every job is done.
	svcCtx, stopServices := context.WithCancel(context.Background())
	defer stopServices()

	satisfied := map[string]chan struct{}{}
	for _, it := range w.r.e.Items {
		satisfied[it.Name] = make(chan struct{})
	}
	var jobs, services sync.WaitGroup
	fail := func(err error) { cancel(err) }
	for _, it := range w.r.e.Items {
		wg := &jobs
		if it.Service {
			wg = &services
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, a := range it.After {
				select {
				case <-satisfied[a]:
				case <-tctx.Done():
					return
				}
			}
			if it.Start > 0 && !sleepCtx(tctx, w.realOf(it.Start)) {
				return
			}
			var err error
			if it.Service {
				err = w.service(tctx, svcCtx, it)
			} else {
				err = w.job(tctx, it)
			}
			if err != nil {
				fail(err)
				return
			}
			close(satisfied[it.Name])
		}()
	}
	// Wait for the jobs (a failed run or timeout ends them too).
	jobsDone := make(chan struct{})
	go func() { jobs.Wait(); close(jobsDone) }()
	<-jobsDone
	end := time.Now()
	w.real, w.virtual = end.Sub(w.t0), w.virt(end)
	stopServices()
	services.Wait()
	if err := context.Cause(tctx); err != nil && !errors.Is(err, context.Canceled) || ctx.Err() != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return err
	}
	if err := context.Cause(rctx); err != nil {
		return err
	}
	return nil
}

// sleepCtx sleeps d unless ctx ends first (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// job runs every instance of a job (one per node, in parallel), each
// Repeat times in a row, records completion times and metrics.
func (w *workload) job(ctx context.Context, it *Item) error {
	var wg sync.WaitGroup
	errs := make([]error, len(it.Nodes))
	for i, n := range it.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for iter := range it.Repeat {
				jctx, cancel := ctx, context.CancelFunc(func() {})
				if it.Timeout > 0 {
					jctx, cancel = context.WithTimeoutCause(ctx, w.realOf(it.Timeout),
						fmt.Errorf("%w: %s exceeded its %v", ErrTimeout, it.Name, it.Timeout))
				}
				ex, out, err := w.exec(jctx, it, i, n, iter, nil)
				cancel()
				if err == nil && ex.Code != 0 || ex.Signal != 0 {
					err = fmt.Errorf("%w: exit status %d%s%s", ErrJobFailed, ex.Code, sigText(ex.Signal), tail(out.Stderr))
				}
				if err != nil && !(it.AllowFail && ctx.Err() == nil) {
					errs[i] = &ItemError{Item: it.Name, Node: n, Iter: iter, Err: err}
					return
				}
				w.record(it, n, iter, []Sample{{Metric: "completion", Value: ex.End - ex.Start, Unit: "s"}})
				if err := w.readMetrics(it, n, iter, out); err != nil {
					errs[i] = err
					return
				}
				w.event("%s done on %s (%d/%d)", it.Name, n, iter+1, it.Repeat)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (w *workload) readMetrics(it *Item, n string, iter int, out Output) error {
	for _, m := range it.Metrics {
		s, err := Read(m, out)
		if err != nil {
			return &ItemError{Item: it.Name, Node: n, Iter: iter, Err: err}
		}
		w.record(it, n, iter, s)
	}
	return nil
}

func sigText(sig int) string {
	if sig == 0 {
		return ""
	}
	return fmt.Sprintf(" (killed by %v)", syscall.Signal(sig))
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 300 {
		s = "..." + s[len(s)-300:]
	}
	return ": " + s
}

// service starts every instance of a service, waits until each is ready
// and returns; the instances run until stop is cancelled, then their
// output is read for metrics.
func (w *workload) service(ctx, stop context.Context, it *Item) error {
	var wg sync.WaitGroup
	errs := make([]error, len(it.Nodes))
	for i, n := range it.Nodes {
		wg.Add(1)
		readyc := make(chan error, 1)
		go func() {
			ex, out, err := w.exec(stop, it, i, n, 0, readyc)
			if err != nil {
				w.event("service %s on %s: %v", it.Name, n, err)
			}
			if err := w.readMetrics(it, n, 0, out); err != nil && len(it.Metrics) > 0 {
				w.event("%v", err)
			}
			_ = ex
		}()
		go func() {
			defer wg.Done()
			select {
			case err := <-readyc:
				errs[i] = err
			case <-ctx.Done():
				errs[i] = context.Cause(ctx)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	w.event("service %s ready", it.Name)
	return nil
}

// stopGrace is how long a stopped execution gets between SIGTERM and
// SIGKILL.
const stopGrace = 2 * time.Second

// exec runs one execution of it on node n until it exits or ctx ends
// (then SIGTERM, SIGKILL after stopGrace). For a service, readyc receives
// nil once its readiness condition holds, or why it never will.
func (w *workload) exec(ctx context.Context, it *Item, idx int, n string, iter int, readyc chan<- error) (Execution, Output, error) {
	base := fmt.Sprintf("%s.%s.%d", it.Name, n, iter)
	ex := Execution{Item: it.Name, Node: n, Iter: iter, Stdout: filepath.Join("out", base+".out"), Stderr: filepath.Join("out", base+".err")}
	var out Output
	rd := &readyAt{}
	fail := func(err error) (Execution, Output, error) {
		ex.Error = err.Error()
		ex.Ready = rd.get()
		w.addExec(ex)
		if readyc != nil {
			report(readyc, err)
		}
		return ex, out, err
	}
	ns, err := w.st.Node(n)
	if err != nil {
		return fail(err)
	}
	stdout, err := createOut(filepath.Join(w.r.dir, ex.Stdout))
	if err != nil {
		return fail(err)
	}
	defer stdout.Close()
	stderr, err := createOut(filepath.Join(w.r.dir, ex.Stderr))
	if err != nil {
		return fail(err)
	}
	defer stderr.Close()
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return fail(err)
	}
	defer stdin.Close()
	work := filepath.Join(w.scratch, "nodes", n)
	env := w.env(it, idx, n, iter, work)
	sigs := make(chan os.Signal, 2)
	type result struct {
		es  node.ExitStatus
		err error
	}
	done := make(chan result, 1)
	exited := make(chan struct{})
	start := time.Now()
	ex.Start = w.virt(start)
	go func() {
		es, err := node.Exec(n, ns.Socket, node.ExecOptions{Argv: it.Argv, Env: env, Dir: work,
			Stdin: stdin, Stdout: stdout, Stderr: stderr, Signals: sigs})
		done <- result{es, err}
		close(exited)
	}()
	if readyc != nil {
		go func() {
			err := w.waitReady(ctx, it, ns, stdout.Name(), stderr.Name(), start, exited)
			if err == nil {
				rd.set(w.virt(time.Now()))
				w.record(it, n, iter, []Sample{{Metric: "ready", Value: rd.get() - ex.Start, Unit: "s"}})
			} else {
				err = &ItemError{Item: it.Name, Node: n, Iter: iter, Err: err}
			}
			report(readyc, err)
		}()
	}
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		sigs <- syscall.SIGTERM
		select {
		case res = <-done:
		case <-time.After(stopGrace):
			sigs <- syscall.SIGKILL
			res = <-done
		}
		if readyc == nil && res.err == nil {
			res.err = context.Cause(ctx)
		}
	}
	ex.End = w.virt(time.Now())
	ex.Code, ex.Signal = res.es.Code, res.es.Signal
	out = Output{Stdout: readOut(stdout.Name()), Stderr: readOut(stderr.Name()), WorkDir: work}
	if res.err != nil {
		return fail(res.err)
	}
	ex.Ready = rd.get()
	w.addExec(ex)
	return ex, out, nil
}

// report sends the first readiness outcome; later ones are dropped.
func report(c chan<- error, err error) {
	select {
	case c <- err:
	default:
	}
}

// readyAt is when a service became ready (virtual seconds; 0: not yet).
type readyAt struct {
	mu sync.Mutex
	t  float64
}

func (r *readyAt) set(t float64) { r.mu.Lock(); r.t = t; r.mu.Unlock() }
func (r *readyAt) get() float64  { r.mu.Lock(); defer r.mu.Unlock(); return r.t }

func (w *workload) addExec(ex Execution) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.execs = append(w.execs, ex)
}

// env is an execution's environment: a plain PATH, the item's variables
// and the runner's VMUX_* ones. The mode and k are not among them: the
// workload must not be able to tell the modes apart.
func (w *workload) env(it *Item, idx int, n string, iter int, work string) []string {
	var nodes []string
	for _, nd := range w.st.Nodes {
		nodes = append(nodes, nd.Name)
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + work, "LANG=C.UTF-8",
		"VMUX_EXPERIMENT=" + w.st.Name, "VMUX_ITEM=" + it.Name, "VMUX_NODE=" + n,
		"VMUX_INDEX=" + strconv.Itoa(idx+1), "VMUX_MEMBERS=" + strings.Join(it.Nodes, " "),
		"VMUX_NODES=" + strings.Join(nodes, " "), "VMUX_ITER=" + strconv.Itoa(iter+1),
		"VMUX_WORK=" + work, "VMUX_SHARED=" + filepath.Join(w.scratch, "shared"),
	}
	for _, k := range sortedKeys(it.Env) {
		env = append(env, k+"="+it.Env[k])
	}
	return env
}

// maxOutBytes bounds what is read back of an execution's output.
const maxOutBytes = 64 << 20

func createOut(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create output file: %w", err)
	}
	return f, nil
}

func readOut(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxOutBytes))
	return b
}
