package live

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/rt/ptrace"
)

// x86-64 syscall numbers and flags injected into targets.
const (
	sysClose   = 3
	sysMmap    = 9
	sysMunmap  = 11
	sysIoctl   = 16
	sysMadvise = 28

	madvDontneed = 4
	oCloexec     = 0o2000000
	oNonblock    = 0o4000
	protRW       = 0x3
	mapPrivAnon  = 0x22
	mapNoreserve = 0x4000
)

// Sizes of the two mappings the engine keeps in each process: the staging
// area pages are moved to on their way out (UFFDIO_MOVE, atomic with
// respect to the process's own writes) and a control area for the move
// requests. Its last staging page is the probe slot that finds a fork
// child.
const (
	stagingPages = 512
	movePages    = 8 // move requests
	ctlPages     = movePages + ptrace.AgentPages
	moveArgSize  = 40  // struct uffdio_move
	maxRuns      = 300 // an agent runs at most 320 calls at once
)

// uffdioMoveCmd is UFFDIO_MOVE's ioctl number (_IOWR(0xAA, 5, 40 bytes)).
const uffdioMoveCmd = 3<<30 | moveArgSize<<16 | 0xAA<<8 | 5

// features the engine needs of a userfaultfd.
const uffdFeatures = linux.UffdFeatureEventFork | linux.UffdFeatureEventRemap |
	linux.UffdFeatureEventRemove | linux.UffdFeatureEventUnmap |
	linux.UffdFeatureWPAsync | linux.UffdFeatureMove | linux.UffdFeaturePagefaultFlagWP

// target is one attached process.
type target struct {
	e      *Engine
	id     uint32
	pid    int // 0 for a fork child not yet identified
	start  uint64
	name   string
	domain mem.Domain
	group  int32

	uffd     *linux.Uffd
	remoteFd int // the uffd's number in the process (-1: not installed)
	staging  uint64
	ctl      uint64
	wake     *linux.Waker
	loopDone chan struct{}
	// agent is the thread in the process that runs the engine's calls
	// (moves, frees) without stopping the process's own threads; nil:
	// calls are injected through a held thread (see rt/ptrace's Agent for
	// why that is the fallback only). Used on the injector thread.
	agent     *ptrace.Agent
	wantAgent bool // start one at the next turn of the clock
	dirtyStg  bool // staging may hold pages (a fork child's inherited copy)

	// set once the process is known (pid != 0)
	pidfd   int
	pagemap *os.File

	// use is held (read) by whoever works on the target's files outside
	// its serve loop (the clock); closing them takes it to write.
	use sync.RWMutex

	// mu guards everything below. Lock order: Engine.mu, target.mu,
	// Pool's mutex, Journal's mutex.
	mu      sync.Mutex
	pt      pageTable
	pending map[uint64]uint64 // page -> staging slot: moved out, not yet committed
	forks   []*target         // children forked while pages were pending
	// inherited are the pages a fork child got while they were in flight
	// in its parent (moved to the parent's staging area, not yet stored):
	// their bytes, copied from the parent's slots at the fork, until the
	// parent's batch stores them for the child too. The child's own
	// staging slots are its own business from the fork on.
	inherited map[uint64][]byte
	ranges    spans     // registered with the uffd
	cmds      []command // run by the serve loop
	st        targetStats
	threshold uint32 // epochs a page must stay cold (the promotion controller moves it)
	stopping  bool
	gone      bool
	rssBefore int64
	lastPromo promoWindow
}

// targetStats are a target's counters.
type targetStats struct {
	held      int64 // pages held
	evicted   int64 // pages taken out, ever
	faults    int64 // faults served on held pages
	zeroFills int64 // faults on pages never held (first touch)
	cameBack  int64 // held pages faulted back sooner than the cold threshold
	rejected  int64 // cold pages left in place (unique and incompressible)
	busy      int64 // pages that could not be moved (shared after fork)
	removed   int64 // held pages dropped by the process (madvise, munmap)
	hist      [nMech]histogram
}

// promoWindow counts promotions for the controller.
type promoWindow struct {
	since  time.Time
	faults int64
}

func (t *target) String() string {
	if t.pid == 0 {
		return fmt.Sprintf("fork child %d of %s", t.id, t.name)
	}
	return fmt.Sprintf("pid %d (%s)", t.pid, t.name)
}

// attach injects the engine's mappings and a userfaultfd into process pid
// (on the injector thread), then registers its memory.
func (e *Engine) attach(pid int, domain string) (*target, error) {
	pi, err := readProc(pid)
	if err != nil {
		return nil, &TargetError{Pid: pid, Op: "attach to", Err: err}
	}
	if pid == os.Getpid() {
		return nil, &TargetError{Pid: pid, Op: "attach to", Err: errors.New("the engine cannot manage its own memory")}
	}
	if domain == "" {
		domain = "uid:" + strconv.Itoa(pi.uid)
	}
	t := &target{e: e, pid: pid, start: pi.start, name: pi.comm, domain: mem.Domain(domain),
		pidfd: -1, remoteFd: -1, pt: newPageTable(), pending: map[uint64]uint64{}, rssBefore: pi.rss}
	t.group = e.pool.Group(t.domain)
	if err := t.open(); err != nil {
		return nil, &TargetError{Pid: pid, Op: "attach to", Err: err}
	}
	var remote int
	err = e.onInjector(func() error {
		var err error
		remote, t.staging, t.ctl, t.agent, err = injectAttach(pid, e)
		return err
	})
	if err != nil {
		t.closeFiles()
		return nil, &TargetError{Pid: pid, Op: "attach to", Err: err}
	}
	t.remoteFd = remote
	fd, err := linux.PidfdGetfd(t.pidfd, remote)
	if err == nil {
		t.uffd = linux.NewUffd(fd)
		var got uint64
		if got, err = t.uffd.API(uffdFeatures); err == nil && got&uffdFeatures != uffdFeatures {
			err = fmt.Errorf("features %#x of %#x: %w", got&uffdFeatures, uint64(uffdFeatures), ErrUnsupported)
		}
	}
	if err == nil {
		err = t.uffd.Register(t.staging, stagingPages*pageSize, linux.UffdRegisterMissing|linux.UffdRegisterWP)
	}
	if err != nil {
		e.undoAttach(t)
		return nil, &TargetError{Pid: pid, Op: "attach to", Err: err}
	}
	e.addTarget(t)
	if err := t.startLoop(); err != nil {
		e.undoAttach(t)
		return nil, &TargetError{Pid: pid, Op: "attach to", Err: err}
	}
	if err := t.registerNew(e.epoch.Load()); err != nil {
		e.log.Warn("registering memory", "target", t.String(), "err", err)
	}
	return t, nil
}

// open opens the pidfd and pagemap of a known process and checks that
// the PID still names the process that was examined.
func (t *target) open() error {
	fd, err := linux.PidfdOpen(t.pid)
	if err != nil {
		return err
	}
	t.pidfd = fd
	pi, err := readProc(t.pid)
	if err != nil || pi.start != t.start {
		unixClose(fd)
		t.pidfd = -1
		return fmt.Errorf("PID %d: %w", t.pid, ErrGone)
	}
	pm, err := os.Open("/proc/" + strconv.Itoa(t.pid) + "/pagemap")
	if err != nil {
		unixClose(fd)
		t.pidfd = -1
		return err
	}
	t.pagemap = pm
	return nil
}

func (t *target) closeFiles() {
	if t.pagemap != nil {
		t.pagemap.Close()
		t.pagemap = nil
	}
	if t.pidfd >= 0 {
		unixClose(t.pidfd)
		t.pidfd = -1
	}
	if t.uffd != nil {
		t.uffd.Close()
		t.uffd = nil
	}
	t.mu.Lock()
	w := t.wake
	t.wake = nil
	t.mu.Unlock()
	if w != nil {
		w.Close()
	}
}

// injectAttach maps the staging and control areas in process pid and
// creates its userfaultfd: with userfaultfd(2) when the process may (root),
// else through /dev/userfaultfd, whose descriptor the engine lends it for
// one USERFAULTFD_IOC_NEW. Runs on the injector thread.
func injectAttach(pid int, e *Engine) (remote int, staging, ctl uint64, agent *ptrace.Agent, err error) {
	a, err := ptrace.Attach(pid)
	if err != nil {
		return -1, 0, 0, nil, err
	}
	defer func() {
		if derr := a.Detach(); derr != nil && err == nil {
			err = derr
		}
	}()
	staging, err = a.Call(sysMmap, 0, stagingPages*pageSize, protRW, mapPrivAnon|mapNoreserve, ^uint64(0), 0)
	if err != nil {
		return -1, 0, 0, nil, fmt.Errorf("map staging area: %w", err)
	}
	ctl, err = a.Call(sysMmap, 0, ctlPages*pageSize, protRW, mapPrivAnon, ^uint64(0), 0)
	if err != nil {
		a.Call(sysMunmap, staging, stagingPages*pageSize)
		return -1, 0, 0, nil, fmt.Errorf("map control area: %w", err)
	}
	undo := func() {
		a.Call(sysMunmap, staging, stagingPages*pageSize)
		a.Call(sysMunmap, ctl, ctlPages*pageSize)
	}
	fd, err := a.Call(linux.SysUserfaultfd, oCloexec|oNonblock)
	if errors.Is(err, syscall.EPERM) {
		fd, err = devUserfaultfd(a, pid)
	}
	if err != nil {
		undo()
		return -1, 0, 0, nil, fmt.Errorf("create userfaultfd in the process: %w", err)
	}
	if agent, err = a.StartAgent(pid, ctl+movePages*pageSize); err != nil {
		e.log.Warn("no agent thread; calls go through a held thread", "pid", pid, "err", err)
		agent, err = nil, nil
	}
	return int(fd), staging, ctl, agent, nil
}

// devUserfaultfd creates a userfaultfd in an unprivileged process through
// a lent /dev/userfaultfd descriptor.
func devUserfaultfd(a *ptrace.Attached, pid int) (uint64, error) {
	dev, err := linux.OpenDevUserfaultfd()
	if err != nil {
		return 0, err
	}
	defer dev.Close()
	rdev, err := ptrace.InstallFD(a.Injector, pid, int(dev.Fd()))
	if err != nil {
		return 0, err
	}
	fd, err := a.Call(sysIoctl, uint64(rdev), linux.UserfaultfdIocNew, oCloexec|oNonblock)
	a.Call(sysClose, uint64(rdev))
	return fd, err
}

// undoAttach removes what attach put into the process (its mappings and
// uffd) after a failure, before any page was taken.
func (e *Engine) undoAttach(t *target) {
	if t.uffd != nil {
		t.uffd.Close()
		t.uffd = nil
	}
	_ = e.onInjector(func() error { return t.injectDetach() })
	e.removeTarget(t)
	t.closeFiles()
}

// injectDetach closes the process's uffd and unmaps the engine's areas.
// Runs on the injector thread.
func (t *target) injectDetach() error {
	if t.pid == 0 {
		return nil
	}
	if t.agent != nil {
		if err := t.agent.Close(); err != nil {
			return err // its code is still mapped: leave the areas
		}
		t.agent = nil
	}
	a, err := ptrace.Attach(t.pid)
	if err != nil {
		return err
	}
	calls := []ptrace.Syscall{
		{Nr: sysMunmap, Args: [6]uint64{t.staging, stagingPages * pageSize}},
		{Nr: sysMunmap, Args: [6]uint64{t.ctl, ctlPages * pageSize}},
	}
	if t.remoteFd >= 0 {
		calls = append(calls, ptrace.Syscall{Nr: sysClose, Args: [6]uint64{uint64(t.remoteFd)}})
	}
	err = a.Batch(calls)
	if derr := a.Detach(); err == nil {
		err = derr
	}
	return err
}

// registerNew registers the process's manageable mappings that are not
// registered yet (new ones since the last scan) and write-protects them
// so that the aging clock sees their writes.
func (t *target) registerNew(epoch uint32) error {
	ms, err := maps(t.pid)
	if err != nil {
		return err
	}
	t.mu.Lock()
	have := t.ranges
	t.mu.Unlock()
	var first error
	// the engine's own areas are never managed; a mapping of the process
	// that the kernel merged with one of them is managed around it
	skip := have.add(t.staging, t.staging+stagingPages*pageSize).add(t.ctl, t.ctl+ctlPages*pageSize)
	for _, m := range ms {
		if !manageable(m) {
			continue
		}
		for _, sp := range skip.missing(m.Start, m.End) {
			if err := t.uffd.Register(sp.start, sp.end-sp.start, linux.UffdRegisterMissing|linux.UffdRegisterWP); err != nil {
				// mlocked, VM_IO and the like: leave them alone
				t.e.log.Debug("not registered", "target", t.String(), "start", fmt.Sprintf("%#x", sp.start), "pages", (sp.end-sp.start)/pageSize, "err", err)
				if first == nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.EBUSY) {
					first = err
				}
				continue
			}
			t.mu.Lock()
			t.ranges = t.ranges.add(sp.start, sp.end)
			t.mu.Unlock()
			t.e.log.Debug("registered", "target", t.String(), "start", fmt.Sprintf("%#x", sp.start), "pages", (sp.end-sp.start)/pageSize)
			// every present page starts as just written
			if err := t.scanRange(sp, epoch, nil); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func unixClose(fd int) { _ = linux.Close(fd) }
