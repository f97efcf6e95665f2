package vdso

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// ClockMemfdName is the memfd name of a run's clock; a named run uses
// ClockMemfdName + ":" + name. `vmux clock` finds clocks by it.
const ClockMemfdName = "vmux-clock"

// Writer phases stored at vclock.PageOffPhase (see lock/recover).
const (
	phaseIdle    = 0
	phaseBackup  = 1 // copying [0, PageUsed) to the backup: main is intact
	phaseWriting = 2 // writing main: the backup is intact
)

// Timing of waits on another writer: how long before checking that it is
// still alive, and how long before giving up on a live one.
const (
	writerCheckAfter = 20 * time.Millisecond
	writerGiveUp     = 2 * time.Second
)

// Clock is a run's shared clock page: a memfd of one page, mapped shared by
// the supervisor (read-write) and by every tracee (read-only, via the
// replacement vDSO). Methods are safe for concurrent use; writers in other
// processes are serialized by the seqlock itself.
type Clock struct {
	f    *os.File
	name string
	log  *slog.Logger
	pid  uint32

	mu  sync.Mutex // guards mem (nil once closed) and serializes local writers
	mem []byte

	// The owner's watchdog (NewClock only): stop ends it, done reports it.
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// NewClock creates the clock memfd of a run (run may be empty), maps it and
// stores the parameters of a new virtual clock started now. log may be nil.
func NewClock(run string, c vclock.Config, log *slog.Logger) (*Clock, error) {
	name := ClockMemfdName
	if run != "" {
		name += ":" + run
	}
	f, err := linux.MemfdCreate(name, vclock.PageSize)
	if err != nil {
		return nil, fmt.Errorf("creating clock: %w", err)
	}
	clk, err := mapClock(f, name, log)
	if err != nil {
		f.Close()
		return nil, err
	}
	p, err := vclock.NewParams(c, RealSource{}.Now())
	if err != nil {
		clk.Close()
		return nil, fmt.Errorf("creating clock: %w", err)
	}
	if err := clk.Store(p); err != nil {
		clk.Close()
		return nil, err
	}
	clk.stop, clk.done = make(chan struct{}), make(chan struct{})
	go clk.watch()
	return clk, nil
}

// OpenClock maps an existing clock memfd read-write, for example
// /proc/PID/fd/N of a running supervisor (FindClock returns such a path).
func OpenClock(path string, log *slog.Logger) (*Clock, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening clock: %w", err)
	}
	clk, err := mapClock(f, path, log)
	if err != nil {
		f.Close()
		return nil, err
	}
	if _, err := clk.Load(); err != nil {
		clk.Close()
		return nil, err
	}
	return clk, nil
}

func mapClock(f *os.File, name string, log *slog.Logger) (*Clock, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mem, err := linux.MmapShared(f, vclock.PageSize, true)
	if err != nil {
		return nil, fmt.Errorf("mapping clock: %w", err)
	}
	return &Clock{f: f, name: name, log: log, pid: uint32(os.Getpid()), mem: mem}, nil
}

// Fd is the memfd, for the supervisor to map into tracees (read-only,
// MAP_SHARED, at region base + ClockPageOffset). It stays owned by Clock.
func (c *Clock) Fd() int { return int(c.f.Fd()) }

// File is the memfd as an *os.File (for exec.Cmd.ExtraFiles); it stays
// owned by Clock.
func (c *Clock) File() *os.File { return c.f }

// Name is the memfd name (or the path the clock was opened from).
func (c *Clock) Name() string { return c.name }

// Close stops the watchdog, unmaps the page and closes the memfd. Tracees
// keep their mappings.
func (c *Clock) Close() error {
	if c.stop != nil {
		c.stopOnce.Do(func() { close(c.stop) })
		<-c.done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		return nil
	}
	err := linux.Munmap(c.mem)
	c.mem = nil
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("closing clock: %w", err)
	}
	return nil
}

// Load returns the current parameters, read under the seqlock. If a writer
// died inside the seqlock, Load repairs the page first.
func (c *Clock) Load() (vclock.Params, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		return vclock.Params{}, fmt.Errorf("loading clock: %w", ErrClosed)
	}
	return c.load()
}

// Store replaces the parameters as they are (no re-basing: use Update,
// SetTDF, Pause or Resume to change a running clock without a jump).
func (c *Clock) Store(p vclock.Params) error {
	_, err := c.Update(func(vclock.Params, vclock.Now) (vclock.Params, error) { return p, nil })
	return err
}

// Update runs f inside the write side of the seqlock with the current
// parameters and real readings taken inside it, and stores its result.
// Taking the readings inside is what keeps virtual time monotonic: every
// reader that used the old parameters finished its real read before them.
func (c *Clock) Update(f func(old vclock.Params, now vclock.Now) (vclock.Params, error)) (vclock.Params, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		return vclock.Params{}, fmt.Errorf("updating clock: %w", ErrClosed)
	}
	if sup := dilatingSupervisor(); sup != 0 {
		return vclock.Params{}, fmt.Errorf("updating clock: %w (traced by the supervisor pid %d): run the command outside the run", ErrInsideRun, sup)
	}
	if err := c.lock(); err != nil {
		return vclock.Params{}, fmt.Errorf("updating clock: %w", err)
	}
	old, _ := vclock.DecodePage(c.snapshot()) // zero Params on a fresh page
	p, err := f(old, RealSource{}.Now())
	if err == nil {
		err = p.Validate()
	}
	if err != nil {
		c.unlock()
		return vclock.Params{}, fmt.Errorf("updating clock: %w", err)
	}
	c.write(&p)
	c.unlock()
	return p, nil
}

// SetTDF changes the factor of the running clock without a jump.
func (c *Clock) SetTDF(k vclock.TDF) (vclock.Params, error) {
	return c.Update(func(p vclock.Params, now vclock.Now) (vclock.Params, error) { return p.SetTDF(k, now) })
}

// Pause freezes virtual time for every process of the run.
func (c *Clock) Pause() (vclock.Params, error) {
	return c.Update(func(p vclock.Params, now vclock.Now) (vclock.Params, error) { return p.Pause(now), nil })
}

// Resume releases virtual time from where it froze.
func (c *Clock) Resume() (vclock.Params, error) {
	return c.Update(func(p vclock.Params, now vclock.Now) (vclock.Params, error) { return p.Resume(now), nil })
}

// RealSource reads the real clocks with clock_gettime. The alarm clocks
// are the same clocks as REALTIME and BOOTTIME and are not read.
type RealSource struct{}

// Now reads every wall clock. Reads are sequential (a few µs apart); each
// clock is re-based at its own reading, so each stays continuous.
func (RealSource) Now() vclock.Now {
	var n vclock.Now
	for _, id := range []vclock.ClockID{vclock.Monotonic, vclock.Realtime, vclock.MonotonicRaw,
		vclock.Boottime, vclock.TAI, vclock.MonotonicCoarse, vclock.RealtimeCoarse} {
		v, err := linux.ClockGettime(int32(id))
		if err != nil {
			// These clocks exist on every supported kernel; a failure here
			// is unrecoverable misconfiguration, so fall back to REALTIME
			// rather than anchor a clock at zero.
			v = n[vclock.Realtime]
		}
		n[id] = v
	}
	n[vclock.RealtimeAlarm] = n[vclock.Realtime]
	n[vclock.BoottimeAlarm] = n[vclock.Boottime]
	return n
}

var _ vclock.Source = RealSource{}

// yield waits a little for another writer.
func yield(spins int) {
	if spins < 100 {
		runtime.Gosched()
		return
	}
	time.Sleep(50 * time.Microsecond)
}

// dilatingSupervisor returns the pid of the vmux supervisor tracing this
// process (a tracer that holds a clock memfd), or 0.
func dilatingSupervisor() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
			pid, _ := strconv.Atoi(strings.TrimSpace(v))
			if pid == 0 {
				return 0
			}
			if refs, _ := clocksOf(pid); len(refs) > 0 {
				return pid
			}
			return 0
		}
	}
	return 0
}
