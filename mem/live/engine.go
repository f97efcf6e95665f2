package live

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmux/vmux/internal/safefile"
	"github.com/vmux/vmux/mem"
)

// DefaultDir is where the live engine keeps its store: tmpfs, so held pages
// outlive the engine's process (a kill -9 loses none) but not a reboot,
// which the processes do not survive either.
const DefaultDir = "/run/vmux/live"

// Config configures a live engine.
type Config struct {
	// Mem selects detector, codec and trust (CrossDomain).
	Mem mem.Config
	// Dir is the state directory (DefaultDir when empty).
	Dir string
	// Cold is how long a page must go unwritten (and, learned by
	// eviction, unread) before it is taken out (default 30 s).
	Cold time.Duration
	// Interval is the aging clock's period (default Cold/4, at least
	// 500 ms and at most 5 s).
	Interval time.Duration
	// PromotionTarget is the fraction of held pages per minute that may
	// come back before a process's cold threshold is raised (default
	// 0.002, as far memory's 0.2%/min).
	PromotionTarget float64
	// CPU is the share of one CPU eviction may use per interval (default 0.5).
	CPU float64
	// Log receives the engine's messages (default: discarded).
	Log *slog.Logger
}

func (c *Config) fill() error {
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	if c.Cold <= 0 {
		c.Cold = 30 * time.Second
	}
	if c.Interval <= 0 {
		c.Interval = min(max(c.Cold/4, 500*time.Millisecond), 5*time.Second)
	}
	if c.PromotionTarget <= 0 {
		c.PromotionTarget = 0.002
	}
	if c.CPU <= 0 || c.CPU > 1 {
		c.CPU = 0.5
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(discard{}, nil))
	}
	if c.Mem.MaxCompressed == 0 {
		c.Mem.MaxCompressed = DefaultMaxCompressed
	}
	var err error
	c.Mem, err = mem.Normalize(c.Mem)
	return err
}

// DefaultMaxCompressed is the live engine's bound on a compressed page.
// The paper (and vmux mem analyze) keep a page compressed only at <= 2 KiB,
// half a page; the live store packs payloads of any size into 4 KiB
// blocks, so a page that compresses to 3 KiB still frees a quarter of its
// memory.
const DefaultMaxCompressed = 3072

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// coldEpochs is the cold time in clock ticks.
func (c *Config) coldEpochs() uint32 {
	return uint32(max(1, (c.Cold+c.Interval-1)/c.Interval))
}

// Files of the state directory.
const (
	payloadFile = "payload"
	journalFile = "journal"
	ownerFile   = "engine.pid"
	sockFile    = "ctl.sock"
	logFile     = "engine.log"
)

// Engine is a running live Difference Engine.
type Engine struct {
	cfg      Config
	dir      *safefile.Dir
	pool     *Pool
	payloads *FilePayloads
	journal  *Journal
	log      *slog.Logger
	started  time.Time

	epoch    atomic.Uint32
	work     chan func()
	quit     chan struct{}
	injDone  chan struct{}
	stopOnce sync.Once

	// mu guards the target set.
	mu      sync.Mutex
	targets map[uint32]*target
	nextID  uint32

	// injector thread only
	shadow   shadowIndex
	preBuf   []byte    // an eviction's pages as read
	lastFree time.Time // last time memory went back to the kernel
}

// New creates a fresh engine over an empty state directory. A directory
// that holds a journal of an engine that died is refused: its pages must
// be recovered (Recover), never overwritten.
func New(cfg Config) (*Engine, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	e, err := open(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(filepath.Join(cfg.Dir, journalFile)); err == nil {
		e.dir.Close()
		return nil, fmt.Errorf("start live engine: the state of an engine that stopped without giving its pages back is in %s: run vmux mem live recover", cfg.Dir)
	}
	if e.payloads, err = OpenFilePayloads(filepath.Join(cfg.Dir, payloadFile)); err != nil {
		e.dir.Close()
		return nil, err
	}
	if e.journal, err = CreateJournal(filepath.Join(cfg.Dir, journalFile), cfg.Mem); err != nil {
		e.closeStore()
		return nil, err
	}
	if e.pool, err = NewPool(cfg.Mem, e.payloads, e.poolHooks()); err != nil {
		e.closeStore()
		return nil, err
	}
	e.start()
	return e, nil
}

// open claims the state directory (owner-only) for this process.
func open(cfg Config) (*Engine, error) {
	if err := os.MkdirAll(filepath.Dir(cfg.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("create live state directory: %w", err)
	}
	d, err := safefile.OutputDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if pid, ok := liveOwner(cfg.Dir); ok && pid != os.Getpid() {
		d.Close()
		return nil, fmt.Errorf("%w (pid %d)", ErrRunning, pid)
	}
	if err := writeOwner(cfg.Dir); err != nil {
		d.Close()
		return nil, err
	}
	return &Engine{cfg: cfg, dir: d, log: cfg.Log, targets: map[uint32]*target{}, nextID: 1, started: time.Now()}, nil
}

func (e *Engine) poolHooks() PoolHooks {
	return PoolHooks{
		Put:  func(id CID, c *Content) { e.journal.Put(id, c) },
		Free: func(id CID) { e.journal.Free(id) },
	}
}

// start runs the injector thread: the one OS thread that traces targets
// (ptrace wants every request from the tracer's thread) and runs the clock.
func (e *Engine) start() {
	e.work = make(chan func(), 16)
	e.quit = make(chan struct{})
	e.injDone = make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(e.injDone)
		tk := time.NewTicker(e.cfg.Interval)
		defer tk.Stop()
		for {
			select {
			case f := <-e.work:
				f()
			case <-tk.C:
				e.tick()
			case <-e.quit:
				// drain queued work so that no caller waits forever
				for {
					select {
					case f := <-e.work:
						f()
					default:
						return
					}
				}
			}
		}
	}()
}

// onInjector runs f on the injector thread and waits for it.
func (e *Engine) onInjector(f func() error) error {
	errc := make(chan error, 1)
	select {
	case e.work <- func() { errc <- f() }:
	case <-e.injDone:
		return errors.New("live engine is stopping")
	}
	select {
	case err := <-errc:
		return err
	case <-e.injDone:
		select {
		case err := <-errc:
			return err
		default:
			return errors.New("live engine is stopping")
		}
	}
}

func (e *Engine) addTarget(t *target) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.id == 0 {
		t.id = e.nextID
		e.nextID++
	}
	if t.threshold == 0 {
		t.threshold = e.cfg.coldEpochs()
	}
	e.targets[t.id] = t
	e.journal.Target(t.record())
	_ = e.journal.Flush()
}

func (e *Engine) removeTarget(t *target) {
	e.mu.Lock()
	delete(e.targets, t.id)
	e.mu.Unlock()
}

func (t *target) record() *TargetRecord {
	return &TargetRecord{ID: t.id, Pid: t.pid, Start: t.start, RemoteFd: t.remoteFd, Staging: t.staging,
		StagingPages: stagingPages, Ctl: t.ctl, Group: t.group, Name: t.name, Domain: string(t.domain)}
}

// activeTargets lists the targets the clock works on.
func (e *Engine) activeTargets() []*target {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ts []*target
	for _, t := range e.targets {
		t.mu.Lock()
		ok := !t.gone && !t.stopping && t.pid != 0
		t.mu.Unlock()
		if ok {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].id < ts[j].id })
	return ts
}

// Attach starts managing process pid, in trust domain domain ("": the
// process's uid, as analyze does).
func (e *Engine) Attach(pid int, domain string) error {
	e.mu.Lock()
	for _, t := range e.targets {
		if t.pid == pid {
			e.mu.Unlock()
			return &TargetError{Pid: pid, Op: "attach to", Err: ErrAttached}
		}
	}
	e.mu.Unlock()
	t, err := e.attach(pid, domain)
	if err != nil {
		return err
	}
	e.log.Info("attached", "target", t.String(), "domain", t.domain)
	return nil
}

// Targets lists the PIDs managed.
func (e *Engine) Targets() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []int
	for _, t := range e.targets {
		if t.pid != 0 {
			out = append(out, t.pid)
		}
	}
	sort.Ints(out)
	return out
}

func (e *Engine) closeStore() {
	if e.journal != nil {
		e.journal.Close()
	}
	if e.payloads != nil {
		e.payloads.Close()
	}
	e.dir.Close()
}
