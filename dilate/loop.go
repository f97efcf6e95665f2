package dilate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// thread is one traced task.
type thread struct {
	tid     int
	tgid    int
	tree    *tree // the process tree it belongs to
	as      *aspace
	pending *call // a rewritten syscall waiting for its exit stop
	// restart scales remaining-time outputs when restart_syscall resumes
	// an interrupted rewritten sleep (nil when none is pending).
	restart func(m mem) error
	fresh   bool // created, its initial PTRACE_EVENT_STOP not seen yet
	// slot is the thread's own scratch slot for rewritten syscalls that
	// need no exit stop; kept until the thread exits or execs.
	slot uint64
	// execd: the task has exec'd since it was first seen, so its address
	// space is its own; a parent's late clone/fork event must not replace it.
	execd bool
	// inflight is the rewritten wait the thread may be blocked in (rearm.go).
	inflight *inflight
	// passNext: the next seccomp stop is a re-armed call re-executing with
	// already converted arguments.
	passNext bool
	// rem is the remaining-time output of the sleep absSleep made
	// absolute, written at an interrupting signal (sleeps.go).
	rem uint64
}

// call is a rewritten syscall between its seccomp stop and its exit stop.
type call struct {
	saved linux.Regs // registers at entry, restored at exit
	slot  uint64     // scratch slot, released at exit
	p     vclock.Params
	exit  func(t *tracer, th *thread, c *call, regs *linux.Regs) error
	// restoreNr puts the original syscall number back (alarm -> setitimer).
	restoreNr bool
	// noExit: the rewritten call needs no exit stop (no result to scale):
	// its arguments stay in the thread's slot, and the argument register
	// keeps pointing there after the call (see doc.go).
	noExit bool
	wrote  [2]int64 // the last time struct written to the slot
	// virt is the virtual value rewriteTs read; ours is set when the
	// pointer was already into scratch (a re-executed call).
	virt int64
	ours bool
	wait *inflight // set by handlers of waits, for re-arming
}

// tracer is the trace loop's state; only the trace thread touches it.
type tracer struct {
	s       *Supervisor
	root    int
	threads map[int]*thread
	status  Status
	rootEnd bool
	fatal   error // first supervisor error; the run is being torn down
	vdso    *vdsoInjector
	debug   bool              // log every rewritten syscall
	stops   map[uint64]uint64 // seccomp stops by syscall number
	pcache  *paramCache
	// timers are the armed timers by process (timers.go).
	timers map[int]map[timerKey]*armedTimer
	cpu    map[cpuKey]*cpuAnchor // CPU-time anchors (cpuclock.go)
	// woke is when wait4 last returned: a stop happened before it
	// (sleeps.go).
	woke time.Time
	// stopLead is how much earlier than t.woke a stopped call was surely
	// made (sleeps.go); probes counts the launcher's timed stops.
	stopLead time.Duration
	probes   int
	bell     *doorbell // a Serve's (serve.go); nil for a Start
	// stamped are the processes given the timestamp filter, by tgid, with
	// their start time (handlers_sock.go).
	stamped map[int]string
}

func newTracer(s *Supervisor, root int) *tracer {
	t := &tracer{s: s, root: root, threads: map[int]*thread{}, stops: map[uint64]uint64{},
		timers: map[int]map[timerKey]*armedTimer{},
		debug:  s.log.Enabled(context.Background(), slog.LevelDebug)}
	if root != 0 {
		var pidfd *os.File
		if fd, err := linux.PidfdOpen(root); err == nil {
			pidfd = os.NewFile(uintptr(fd), "pidfd")
		} else {
			s.log.Warn("no pidfd of the launcher; its programs' clock reads will be trapped", "err", err)
		}
		t.threads[root] = &thread{tid: root, tgid: root, as: &aspace{}, tree: newTree(root, nil, pidfd)}
	}
	if s.cfg.ClockReads == ReadsVDSO {
		t.vdso = newVDSOInjector(s.view)
	}
	t.pcache = newParamCache(s.view)
	return t
}

// loop runs until no tracee is left.
func (t *tracer) loop() (Status, error) {
	for {
		tid, ws, err := linux.PtraceWaitAny()
		t.woke = time.Now()
		if err != nil {
			if errors.Is(err, syscall.ECHILD) {
				break
			}
			t.fail(&TraceeError{Op: "waiting for tracees", Err: err})
			continue
		}
		if err := t.handle(tid, ws); err != nil {
			t.fail(err)
		}
	}
	// Trees whose last process the tracer never saw leave (a thread
	// that vanished without an exit report) still hold their launcher's
	// pidfd and listener: a long-lived supervisor (Serve) must not keep them.
	for _, th := range t.threads {
		if th.tree != nil && th.tree.procs > 0 {
			th.tree.close()
		}
	}
	switch {
	case t.fatal != nil:
		return t.status, t.fatal
	case t.s.isClosed():
		return t.status, ErrClosed
	case t.bell != nil:
		return t.status, nil
	case !t.rootEnd:
		return t.status, fmt.Errorf("tracing: root process %d vanished", t.root)
	}
	return t.status, nil
}

// fail records the first error and kills every tracee: no process may go
// on running half-dilated. An experiment's supervisor (Serve) outlives a
// failing tree: it kills that process tree only.
func (t *tracer) fail(err error) {
	var te *TraceeError
	if t.bell != nil && errors.As(err, &te) {
		if th := t.threads[te.Tid]; th != nil && th.tree != nil {
			t.s.log.Error("dilation failed, killing the process tree", "root", th.tree.root, "err", err)
			for _, o := range t.threads {
				if o.tree == th.tree {
					_ = linux.Kill(o.tgid, syscall.SIGKILL)
				}
			}
			return
		}
	}
	if t.fatal == nil {
		t.fatal = err
		t.s.log.Error("dilation failed, killing the run", "err", err)
	}
	t.s.killAll()
}

func (t *tracer) thread(tid int) *thread {
	th := t.threads[tid]
	if th == nil {
		// A new task can report its first stop before its parent's
		// clone/fork event: find its process from /proc.
		tgid, ppid := procIDs(tid)
		th = &thread{tid: tid, tgid: tgid, fresh: true}
		for _, o := range t.threads {
			if o.tgid == tgid && o.as != nil {
				th.as, th.tree = o.as, o.tree
				break
			}
		}
		if th.as == nil {
			if p := t.threads[ppid]; p != nil && p.as != nil {
				th.as, th.tree = p.as.fork(), p.tree
			} else {
				th.as = &aspace{}
			}
			if th.tree != nil && tid == tgid {
				th.tree.procs++
			}
		}
		t.threads[tid] = th
		t.s.trackTgid(tgid, true)
	}
	return th
}

func (t *tracer) handle(tid int, ws linux.WaitStatus) error {
	if t.bell != nil && tid == t.bell.pid && !t.bell.gone.Load() {
		return t.bell.stop(t, ws)
	}
	switch {
	case ws.Exited() || ws.Signaled():
		th := t.threads[tid]
		delete(t.threads, tid)
		if th != nil && th.slot != 0 {
			th.as.release(th.slot)
		}
		if th != nil && th.inflight != nil {
			t.s.setWaiting(th, false)
		}
		t.s.forgetKicks(tid)
		if th != nil && th.tid == th.tgid {
			if th.tree != nil {
				th.tree.exited()
			}
			t.s.trackTgid(th.tgid, false)
			delete(t.timers, th.tgid)
			t.s.setTimerProc(th.tgid, 0)
			t.forgetCPU(th.tgid)
		}
		if tid == t.root {
			t.rootEnd = true
			if ws.Signaled() {
				t.status = Status{Signal: ws.Signal()}
			} else {
				t.status = Status{Code: ws.ExitStatus()}
			}
		}
		return nil
	case !ws.Stopped():
		return nil
	}
	th := t.thread(tid)
	sig := ws.StopSignal()
	if !(sig == syscall.SIGSTOP && ws.TrapCause() == linux.PtraceEventStop) {
		th.fresh = false
	}
	if sig == syscall.SIGTRAP|0x80 {
		return t.syscallExit(th)
	}
	if sig == syscall.SIGTRAP {
		switch ev := ws.TrapCause(); ev {
		case linux.PtraceEventSeccomp:
			return t.seccompStop(th)
		case linux.PtraceEventExec:
			return t.execStop(th)
		case linux.PtraceEventClone, linux.PtraceEventFork, linux.PtraceEventVfork:
			return t.cloneStop(th, ev)
		case linux.PtraceEventStop:
			return t.cont(th, 0)
		case 0:
		default:
			return t.cont(th, 0)
		}
	}
	if ws.TrapCause() == linux.PtraceEventStop {
		// Group-stop (SIGSTOP, SIGTSTP, ...) or a new task's first stop
		// (SIGSTOP). LISTEN keeps a group-stopped task stopped until
		// SIGCONT; a new task is not in a group-stop and just continues.
		if th.fresh {
			th.fresh = false
			return t.cont(th, 0)
		}
		return ignoreGone(linux.PtraceListen(tid))
	}
	// Signal-delivery stop: deliver it unchanged, unless it is the
	// watcher's kick after a clock change (rearm.go).
	if sig == syscall.SIGSTOP && t.s.takeKick(tid) {
		return t.rearm(th)
	}
	if err := t.remainingAtSignal(th); err != nil {
		return err
	}
	return t.cont(th, int(sig))
}

func (t *tracer) cont(th *thread, sig int) error {
	return ignoreGone(linux.PtraceCont(th.tid, sig))
}

// ignoreGone drops ESRCH: a tracee killed (SIGKILL, exit of its group)
// between its stop and our request is reported by wait4 later.
func ignoreGone(err error) error {
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func (t *tracer) cloneStop(th *thread, ev int) error {
	msg, err := linux.PtraceEventMsg(th.tid)
	if err != nil {
		return ignoreGone(err)
	}
	child := int(msg)
	if c := t.threads[child]; c != nil {
		// wait4 reported the child's first stop before this event, and
		// t.thread set it up from /proc. Only a vfork child still needs
		// the parent's allocator (they share memory), unless it already
		// exec'd or holds a slot.
		if ev == linux.PtraceEventVfork && !c.execd && c.slot == 0 {
			c.as = th.as
		}
		return t.cont(th, 0)
	}
	c := &thread{tid: child, fresh: true, tree: th.tree}
	t.threads[child] = c
	switch ev {
	case linux.PtraceEventClone:
		c.tgid, _ = procIDs(child)
		c.as = th.as // threads and CLONE_VM processes share memory
	case linux.PtraceEventVfork:
		c.tgid = child
		c.as = th.as
	default:
		c.tgid = child
		c.as = th.as.fork()
	}
	if c.tgid == child && c.tree != nil {
		c.tree.procs++
	}
	t.s.trackTgid(c.tgid, true)
	return t.cont(th, 0)
}

// procIDs reads a task's thread-group id and parent pid from /proc.
func procIDs(tid int) (tgid, ppid int) {
	tgid = tid
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return tgid, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				tgid = n
			}
		}
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				ppid = n
			}
		}
	}
	return tgid, ppid
}

// params reads the clock's current parameters as they apply to th: with
// its tree's CPU share, if it has one of its own. The clock page is only
// unreadable once its owner died inside a write, which ends the run.
func (t *tracer) params(th *thread) (vclock.Params, error) {
	p, err := t.pcache.get()
	if err != nil {
		return p, fmt.Errorf("reading the run's clock: %w", err)
	}
	if th != nil && th.tree != nil && th.tree.domain != nil {
		if sh := th.tree.domain.Share(); sh.Num != 0 {
			p = p.WithShare(sh)
		}
	}
	return p, nil
}
