package cast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/diecast/tcprto"
)

// Options tune Run.
type Options struct {
	// Modes to run, in order (Plan builds them).
	Modes []Mode
	// Repeat is the number of runs per mode (0: the spec's).
	Repeat int
	// Dir receives the results; it must not exist or be empty.
	Dir string
	// Exe is the vmux binary re-executed as the network daemon, node
	// inits and dilation supervisors (default: this executable).
	Exe string
	// Progress, if set, is called as runs go (from several goroutines,
	// never concurrently).
	Progress func(Progress)
	// Logger receives what happens (default: discarded).
	Logger *slog.Logger
	// MonitorEvery is the keep-up sampling interval (default 250 ms).
	MonitorEvery time.Duration
	// Thresholds judge keep-up (default DefaultThresholds).
	Thresholds *Thresholds
	// AutoMax bounds k in an auto mode (default AutoMax).
	AutoMax float64
	// ScratchDir is where each run's scratch directory is made (default
	// the system's temporary directory).
	ScratchDir string
	// NoTCPScaling leaves node TCP settings at the kernel's defaults in
	// scaled mode (for the study that measures what they do).
	NoTCPScaling bool
}

// Progress is a snapshot of the runs for display.
type Progress struct {
	Run, Runs int // 1-based index of the current run
	Mode      Mode
	Rep, Reps int
	// Phase: "up", "run", "down", "done".
	Phase string
	// Event is the last thing that happened ("bench done on cli1").
	Event   string
	Real    time.Duration // since the workload started
	Virtual time.Duration
	// Result is set when Phase is "done".
	Result *RunResult
}

// Experiment-wide files in the results directory.
const (
	experimentFile = "experiment.json"
	specFile       = "spec.yaml"
	runsDir        = "runs"
	runFile        = "run.json"
	samplesFile    = "samples.jsonl"
)

// ExperimentInfo is DIR/experiment.json.
type ExperimentInfo struct {
	Name       string     `json:"name"`
	Spec       string     `json:"spec"`
	Started    time.Time  `json:"started"`
	Modes      []Mode     `json:"modes"`
	Repeat     int        `json:"repeat"`
	Tolerances Tolerances `json:"tolerances"`
	Thresholds Thresholds `json:"thresholds"`
	Host       HostInfo   `json:"host"`
}

// HostInfo describes the machine the runs used.
type HostInfo struct {
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	Model  string `json:"cpu_model,omitempty"`
}

// Run executes every mode Repeat times, one run at a time (bring up,
// workload, tear down), writing each run's samples and record to o.Dir,
// and returns the runs. A run that fails is recorded as invalid and the
// next goes on; cancelling ctx tears the current run down and returns
// ctx's error with the runs done so far.
func Run(ctx context.Context, e *Experiment, o Options) ([]*RunResult, error) {
	if len(o.Modes) == 0 {
		return nil, fmt.Errorf("run %s: no modes", e.Spec.Name)
	}
	if o.Repeat <= 0 {
		o.Repeat = e.Repeat
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find vmux executable: %w", err)
		}
		o.Exe = exe
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MonitorEvery <= 0 {
		o.MonitorEvery = 250 * time.Millisecond
	}
	th := DefaultThresholds
	if o.Thresholds != nil {
		th = *o.Thresholds
	}
	if err := prepareDir(o.Dir); err != nil {
		return nil, err
	}
	info := ExperimentInfo{Name: e.Spec.Name, Spec: e.Path, Started: time.Now().UTC(), Modes: o.Modes, Repeat: o.Repeat,
		Tolerances: e.Tol, Thresholds: th, Host: hostInfo()}
	if err := writeJSON(filepath.Join(o.Dir, experimentFile), info); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(o.Dir, specFile), e.Raw); err != nil {
		return nil, err
	}
	var out []*RunResult
	total := len(o.Modes) * o.Repeat
	var pmu sync.Mutex
	for i, m := range o.Modes {
		for rep := 1; rep <= o.Repeat; rep++ {
			idx := i*o.Repeat + rep
			progress := func(p Progress) {
				if o.Progress == nil {
					return
				}
				p.Run, p.Runs, p.Mode, p.Rep, p.Reps = idx, total, m, rep, o.Repeat
				pmu.Lock()
				defer pmu.Unlock()
				o.Progress(p)
			}
			r := &run{e: e, o: o, m: m, rep: rep, th: th, progress: progress,
				dir: filepath.Join(o.Dir, runsDir, fmt.Sprintf("%s-r%d", m.ID(), rep))}
			res, err := r.execute(ctx)
			if res != nil {
				out = append(out, res)
				progress(Progress{Phase: "done", Result: res})
			}
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// prepareDir creates dir (owner-only) or accepts it empty.
func prepareDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("prepare results: no directory given")
	}
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create results dir: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("open results dir: %w", err)
	case len(ents) > 0:
		return fmt.Errorf("results dir %s is not empty: give a new one (-o DIR), results of different runs must not mix", dir)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return writeFile(path, append(b, '\n'))
}

// writeFile writes path atomically, owner-only, never through a symlink.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// downGrace is how long teardown waits for the daemon.
const downGrace = 5 * time.Second

// run is one mode x repetition.
type run struct {
	e        *Experiment
	o        Options
	m        Mode
	rep      int
	th       Thresholds
	dir      string
	progress func(Progress)
}

func (r *run) execute(ctx context.Context) (*RunResult, error) {
	res := &RunResult{Mode: r.m, Rep: r.rep, Started: time.Now().UTC()}
	if err := os.MkdirAll(filepath.Join(r.dir, "out"), 0o700); err != nil {
		return nil, fmt.Errorf("create run dir: %w", err)
	}
	spec, err := r.e.ModeSpec(r.m)
	if err != nil {
		return nil, err
	}
	specPath := filepath.Join(r.dir, specFile)
	if err := writeFile(specPath, spec); err != nil {
		return nil, err
	}
	name := r.e.Net.Name
	// The scratch directory is made before bring-up and given to every
	// node to write (a node's file system is otherwise read-only, its /tmp
	// its own: docs/security.md); removed after the teardown below.
	scratch, err := os.MkdirTemp(r.o.ScratchDir, "vmux-cast-")
	if err != nil {
		return nil, fmt.Errorf("create scratch dir: %w", err)
	}
	defer os.RemoveAll(scratch)
	r.progress(Progress{Phase: "up", Event: "bringing up " + name})
	t0 := time.Now()
	st, err := upCancellable(ctx, specPath, netd.UpOptions{Exe: r.o.Exe, Dilate: r.m.Dilated(), Timeout: upTimeout(len(r.e.Net.Nodes)),
		Writable: []string{scratch}})
	res.UpSeconds = time.Since(t0).Seconds()
	if err != nil {
		res.Error = err.Error()
		r.finish(res)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, nil
	}
	defer func() {
		r.progress(Progress{Phase: "down", Event: "tearing down " + name})
		if err := netd.Down(name, downGrace); err != nil {
			r.o.Logger.Error("tear down", "experiment", name, "err", err)
		}
	}()
	if err = makeScratch(scratch, st); err != nil {
		res.Error = err.Error()
		r.finish(res)
		return res, nil
	}
	var rto *tcprto.Scaler
	if r.m.Dilated() && !r.o.NoTCPScaling {
		applied, err := ScaleTCP(st, r.m.TDF)
		res.TCP = applied
		if err == nil {
			// Where the kernel has no cgroup v2 or no sock_ops BPF the
			// run goes on with the kernel's initial RTO, and says so.
			var rerr error
			rto, applied, rerr = scaleInitialRTO(st, r.m.TDF)
			res.TCP = append(res.TCP, applied...)
			if rerr != nil {
				r.o.Logger.Warn("tcp initial rto not scaled", "err", rerr)
				res.TCP = append(res.TCP, "initial_rto: not scaled: "+rerr.Error())
			}
		}
		if rto != nil {
			defer rto.Close() // before Down: the defers run last first
		}
		if err != nil {
			res.Error = err.Error()
			r.finish(res)
			return res, nil
		}
	}
	w := newWorkload(r, st, scratch)
	w.rto = rto
	werr := w.run(ctx)
	res.RealSeconds = w.real.Seconds()
	res.VirtualSeconds = w.virtual
	res.TDFChanges = w.changes
	res.Executions = w.execs
	res.Timeline = w.timeline
	res.Keepup = summarize(w.timeline)
	if werr != nil {
		res.Error = werr.Error()
	}
	n, err := writeSamples(filepath.Join(r.dir, samplesFile), w.records)
	res.Samples = n
	if err != nil && res.Error == "" {
		res.Error = err.Error()
	}
	r.finish(res)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// finish judges and records the run.
func (r *run) finish(res *RunResult) {
	res.Reasons = nil
	if res.Error != "" {
		res.Reasons = append(res.Reasons, "run failed: "+res.Error)
	} else {
		res.Reasons = r.th.Judge(res.Keepup)
	}
	res.Valid = len(res.Reasons) == 0
	if err := writeJSON(filepath.Join(r.dir, runFile), res); err != nil {
		r.o.Logger.Error("record run", "err", err)
	}
}

// upTimeout allows bring-up time in proportion to the nodes.
func upTimeout(nodes int) time.Duration {
	return 60*time.Second + time.Duration(nodes)*200*time.Millisecond
}

// upCancellable is netd.Up that gives up with ctx: the bring-up finishes
// in the background and is torn down at once.
func upCancellable(ctx context.Context, spec string, o netd.UpOptions) (*netd.State, error) {
	type upRes struct {
		st  *netd.State
		err error
	}
	c := make(chan upRes, 1)
	go func() {
		st, err := netd.Up(spec, o)
		c <- upRes{st, err}
	}()
	select {
	case r := <-c:
		return r.st, r.err
	case <-ctx.Done():
		r := <-c
		if r.err == nil {
			_ = netd.Down(r.st.Name, downGrace)
		}
		return nil, fmt.Errorf("bring up: %w", context.Cause(ctx))
	}
}

func writeSamples(path string, recs []Record) (int, error) {
	var b []byte
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return 0, fmt.Errorf("encode sample: %w", err)
		}
		b = append(append(b, line...), '\n')
	}
	return len(recs), writeFile(path, b)
}
