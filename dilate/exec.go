package dilate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vmux/vmux/dilate/vdso"
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/ptrace"
)

// mmap/open constants for the injected calls (x86-64 Linux ABI).
const (
	protRead    = 1
	protWrite   = 2
	protExec    = 4
	mapShared   = 1
	mapPrivate  = 2
	mapFixed    = 0x10
	mapAnon     = 0x20
	oCloexec    = 0x80000
	atFdcwdU    = ^uint64(99) // AT_FDCWD (-100) as a register value
	userCS64    = 0x33
	auxvMaxRead = 1 << 20
)

var (
	errGone       = errors.New("tracee exited during exec injection")
	errNoListener = errors.New("no seccomp listener for this process tree")
)

// execStop runs at every successful execve of a tracee: the new program has
// not run a single instruction. It maps the scratch region (and, in vDSO
// mode, the replacement vDSO and the clock page), then points
// AT_SYSINFO_EHDR at the replacement (or hides the real vDSO in trap mode
// so that every clock read becomes a trapped syscall).
func (t *tracer) execStop(th *thread) error {
	if th.tree != nil && th.tid == th.tree.root && !th.tree.handshook {
		// The launcher's own exec of vmux, still under way when it was
		// seized: nothing of the program runs yet.
		return t.cont(th, 0)
	}
	if former, err := linux.PtraceEventMsg(th.tid); err == nil && int(former) != th.tid {
		delete(t.threads, int(former))
	}
	for tid, o := range t.threads {
		if o.tgid == th.tgid && tid != th.tid {
			delete(t.threads, tid) // killed by the exec
		}
	}
	th.as, th.pending, th.restart, th.slot, th.execd = &aspace{}, nil, nil, 0, true
	err := t.injectAtExec(th)
	if errors.Is(err, errGone) {
		return nil
	}
	if err != nil {
		return &TraceeError{Tid: th.tid, Op: "injecting at exec", Err: err}
	}
	return nil
}

func (t *tracer) injectAtExec(th *thread) error {
	var regs linux.Regs
	if err := linux.PtraceGetRegs(th.tid, &regs); err != nil {
		return errGone
	}
	if regs.Cs != userCS64 {
		return ErrUnsupportedABI
	}
	// Finish the execve itself: inject from its syscall-exit stop.
	held, err := ptrace.ResumeToSyscallStop(th.tid, true)
	if err != nil {
		return (&injector{t: t}).check(err)
	}
	var saved linux.Regs
	if err := linux.PtraceGetRegs(th.tid, &saved); err != nil {
		return errGone
	}
	ehdrAt, realBase, err := findAuxv(th.tid, saved.Rsp)
	if err != nil {
		return err
	}
	if realBase == 0 {
		return fmt.Errorf("finding the vDSO: the kernel gave this program none (vdso=0?); dilation needs it")
	}
	start, end, err := vdsoRange(th.tid)
	if err != nil {
		return err
	}
	realImage := make([]byte, end-start)
	if err := linux.TraceeRead(th.tid, start, realImage); err != nil {
		return fmt.Errorf("reading the vDSO: %w", err)
	}
	i := bytes.Index(realImage, []byte{0x0f, 0x05}) // a syscall instruction to borrow
	if i < 0 {
		return fmt.Errorf("finding a syscall instruction in the vDSO: none")
	}
	in := t.newInjector(th.tid, saved, start+uint64(i), held...)

	size := uint64(scratchSize)
	if t.vdso != nil {
		size += vdso.RegionSize
	}
	base, err := in.call(sysMmap, 0, size, protRead|protWrite, mapPrivate|mapAnon, ^uint64(0), 0)
	if err != nil {
		return fmt.Errorf("mapping scratch memory: %w", err)
	}
	scratch, trap := base, t.vdso == nil
	if t.vdso != nil {
		scratch = base + vdso.RegionSize
		if err := t.vdso.install(in, listenerOf(th), base, realImage, start); err != nil {
			if errors.Is(err, errGone) {
				return err
			}
			// E.g. a program that dropped root can no longer open the
			// supervisor's clock fd: its clock reads are trapped instead.
			t.s.log.Warn("replacement vDSO not installed; trapping clock reads of this program", "tid", th.tid, "err", err)
			trap = true
		} else if err := writeU64(th.tid, ehdrAt+8, base); err != nil {
			return err
		}
	}
	if trap {
		if err := writeU64(th.tid, ehdrAt, atIgnore); err != nil {
			return err
		}
	}
	th.as = newAspace(scratch)
	th.as.insn = start + uint64(i)
	return in.finish()
}

// findAuxv walks the initial stack (argc, argv, envp, auxv) at sp and
// returns the address of the AT_SYSINFO_EHDR entry and its value.
func findAuxv(tid int, sp uint64) (uint64, uint64, error) {
	buf := make([]byte, 0, 64<<10)
	word := func(i int) (uint64, error) {
		for (i+1)*8 > len(buf) {
			if len(buf) >= auxvMaxRead {
				return 0, fmt.Errorf("parsing the initial stack: auxv not found within %d bytes", auxvMaxRead)
			}
			at := sp + uint64(len(buf))
			chunk := make([]byte, 4096-at%4096) // never cross into an unmapped page
			if err := linux.TraceeRead(tid, at, chunk); err != nil {
				return 0, fmt.Errorf("reading the initial stack: %w", err)
			}
			buf = append(buf, chunk...)
		}
		return binary.LittleEndian.Uint64(buf[i*8:]), nil
	}
	argc, err := word(0)
	if err != nil {
		return 0, 0, err
	}
	i := int(argc) + 2 // skip argc, argv[], NULL
	for {
		v, err := word(i)
		if err != nil {
			return 0, 0, err
		}
		i++
		if v == 0 {
			break
		}
	}
	for ; ; i += 2 {
		typ, err := word(i)
		if err != nil {
			return 0, 0, err
		}
		if typ == atNull {
			return 0, 0, fmt.Errorf("parsing auxv: no AT_SYSINFO_EHDR (the kernel gave no vDSO)")
		}
		if typ == atSysinfoEhdr {
			val, err := word(i + 1)
			return sp + uint64(i)*8, val, err
		}
	}
}

// vdsoRange finds the [vdso] mapping in /proc/TID/maps.
func vdsoRange(tid int) (uint64, uint64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(tid) + "/maps")
	if err != nil {
		return 0, 0, fmt.Errorf("reading maps: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasSuffix(line, "[vdso]") {
			continue
		}
		rng, _, _ := strings.Cut(line, " ")
		a, b, _ := strings.Cut(rng, "-")
		s, err1 := strconv.ParseUint(a, 16, 64)
		e, err2 := strconv.ParseUint(b, 16, 64)
		if err1 != nil || err2 != nil || e <= s {
			return 0, 0, fmt.Errorf("parsing maps line %q", line)
		}
		return s, e, nil
	}
	return 0, 0, fmt.Errorf("reading maps: no [vdso] mapping")
}

func writeU64(tid int, addr, v uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	if err := traceeWrite(tid, addr, b[:]); err != nil {
		return fmt.Errorf("rewriting auxv: %w", err)
	}
	return nil
}

// injector runs syscalls inside a stopped tracee (rt/ptrace's Injector, at
// a borrowed syscall instruction) for the tracer: a thread that exits
// meanwhile is reported to the tracer's books as if its loop had seen it,
// and the result is errGone.
type injector struct {
	*ptrace.Injector
	t *tracer
}

// newInjector injects into tid, restoring regs at the end; held are
// signals that stopped it before (delivered at finish).
func (t *tracer) newInjector(tid int, regs linux.Regs, insn uint64, held ...int) *injector {
	in := &injector{Injector: ptrace.NewInjector(tid, regs, insn), t: t}
	in.SetBlocking() // the trace thread waits on nothing else meanwhile
	for _, s := range held {
		in.Hold(s)
	}
	return in
}

// check maps the injector's errors to the tracer's: a thread gone is
// errGone, its exit (if the injector took it) replayed to the tracer.
func (in *injector) check(err error) error {
	var g *ptrace.GoneError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &g):
		if g.Reaped {
			_ = in.t.handle(g.Tid, g.Status)
		}
		return errGone
	case errors.Is(err, ptrace.ErrGone):
		return errGone
	}
	return err
}

// call runs one syscall in the tracee and returns its result.
func (in *injector) call(nr uint64, args ...uint64) (uint64, error) {
	v, err := in.Call(nr, args...)
	return v, in.check(err)
}

// callForFd runs close(clockFdMagic, clockFdMagic2) in the tracee, which
// its filter hands to listener (USER_NOTIF), and answers that notification
// by installing a copy of src in the tracee: it returns the descriptor's
// number there.
//
// The tracee waits on the listener interruptibly: a signal sent to it
// meanwhile withdraws the notification, stops it (signal-delivery-stop,
// the signal is held back like every other during an injection) and makes
// the call again, which notifies again. The fd is installed once and the
// answer repeated until a notification takes it.
func (in *injector) callForFd(listener, src *os.File) (uint64, error) {
	if err := in.check(in.Start(sysClose, clockFdMagic, clockFdMagic2)); err != nil {
		return 0, err
	}
	lfd, tid := int(listener.Fd()), in.Tid()
	installed := -1
	deadline := time.Now().Add(notifTimeout)
	for {
		n, err := linux.SeccompNotifRecv(lfd, notifPoll)
		switch {
		case err == nil && (int(n.Pid) != tid || n.Data.Nr != sysClose || n.Arg(0) != clockFdMagic || n.Arg(1) != clockFdMagic2):
			// Not ours (another program of the tree closing that very
			// number): let it run, and wait on for ours.
			_ = linux.SeccompNotifContinue(lfd, n.ID)
			continue
		case err == nil:
			if installed < 0 {
				if installed, err = linux.SeccompNotifAddFd(lfd, n.ID, int(src.Fd())); errors.Is(err, linux.ErrNotifGone) {
					installed = -1
					continue // interrupted: it comes again
				} else if err != nil {
					return 0, fmt.Errorf("handing the clock page to the tracee: %w", err)
				}
			}
			if err := linux.SeccompNotifReturn(lfd, n.ID, int64(installed)); errors.Is(err, linux.ErrNotifGone) {
				continue
			} else if err != nil {
				return 0, fmt.Errorf("handing the clock page to the tracee: %w", err)
			}
			fd, err := in.Wait()
			if err != nil && !errors.Is(err, ptrace.ErrGone) {
				return 0, fmt.Errorf("clock-fd notification: %w", err)
			}
			return fd, in.check(err)
		case !errors.Is(err, linux.ErrNotifGone):
			return 0, fmt.Errorf("waiting for the clock-fd notification: %w", err)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("waiting for the clock-fd notification: %w (none in %v)", linux.ErrNotifGone, notifTimeout)
		}
		// None yet: the tracee may have stopped on the way (a signal
		// interrupted its wait); let it go on to make the call again.
		if err := in.check(in.Poll()); err != nil {
			return 0, err
		}
	}
}

// notifTimeout bounds the wait for a notification the supervisor itself
// caused (it comes in microseconds; only a tracee killed meanwhile never
// sends it, or one so flooded with signals that every wait is
// interrupted, whose clock reads are then trapped); notifPoll is how often
// the wait looks at the tracee.
const (
	notifTimeout = 2 * time.Second
	notifPoll    = time.Millisecond
)

// finish restores the registers the injection started from and lets the
// program go on, with the signals held meanwhile.
func (in *injector) finish() error {
	sigs, err := in.Finish()
	if err = in.check(err); err != nil {
		return err
	}
	tid, sig := in.Tid(), 0
	if len(sigs) > 0 {
		sig = sigs[0]
		for _, s := range sigs[1:] {
			_ = linux.PtraceTgkill(tid, tid, s)
		}
	}
	if err := linux.PtraceCont(tid, sig); err != nil {
		return errGone
	}
	return nil
}

var traceeWrite = linux.TraceeWrite
