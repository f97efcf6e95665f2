package ptrace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
)

const targetRole = "ptrace-test-target"

// The target runs on its main OS thread (reexec locks it), so the main
// thread, the one Attach picks, is where each mode blocks or spins.
func init() {
	reexec.Register(targetRole, func(args []string) int {
		w := bufio.NewWriter(os.Stdout)
		say := func(f string, a ...any) { fmt.Fprintf(w, f+"\n", a...); w.Flush() }
		switch args[0] {
		case "read": // block in read(0) on the main thread; echo what comes
			say("ready")
			buf := make([]byte, 64)
			n, err := syscall.Read(0, buf)
			if err != nil {
				say("read error %v", err)
				return 1
			}
			say("got %s", strings.TrimSpace(string(buf[:n])))
		case "sleep": // a 400 ms nanosleep, interrupted: must not end early
			say("ready")
			t0 := time.Now()
			ts := syscall.Timespec{Nsec: 400e6}
			if err := syscall.Nanosleep(&ts, nil); err != nil {
				say("sleep error %v", err)
				return 1
			}
			say("slept %d", time.Since(t0).Milliseconds())
		case "spin": // compute in user space until stdin closes
			say("ready")
			done := make(chan struct{})
			go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
			var x, n uint64 = 1, 0
			for {
				select {
				case <-done:
					say("sum %d %d", n, spinCheck(n))
					if x != spinCheck(n) {
						return 1
					}
					return 0
				default:
				}
				for i := 0; i < 1000; i++ {
					x = x*6364136223846793005 + 1442695040888963407
					n++
				}
			}
		case "syscalls": // getppid in a loop (for syscall-exit stops)
			say("ready")
			done := make(chan struct{})
			go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
			for {
				select {
				case <-done:
					say("done")
					return 0
				default:
					syscall.Getppid()
				}
			}
		}
		return 0
	})
}

func spinCheck(n uint64) uint64 {
	var x uint64 = 1
	for i := uint64(0); i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

type target struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startTarget(t *testing.T, mode string) *target {
	t.Helper()
	cmd := reexec.Command("", targetRole, mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tg := &target{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		tg.stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	if l := tg.line(t); l != "ready" {
		t.Fatalf("target said %q, want ready", l)
	}
	return tg
}

func (tg *target) line(t *testing.T) string {
	t.Helper()
	s, err := tg.out.ReadString('\n')
	if err != nil {
		t.Fatalf("read target: %v", err)
	}
	return strings.TrimSpace(s)
}

// waitIn waits until the target's main thread is blocked in syscall nr.
func waitIn(t *testing.T, pid int, nr int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/syscall")
		if err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 && f[0] == strconv.Itoa(nr) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("target %d never blocked in syscall %d", pid, nr)
}

func attach(t *testing.T, pid int) *Attached {
	t.Helper()
	a, err := Attach(pid)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	return a
}

func TestInjectIntoBlockedRead(t *testing.T) {
	testutil.MustRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tg := startTarget(t, "read")
	pid := tg.cmd.Process.Pid
	waitIn(t, pid, unix.SYS_READ)
	a := attach(t, pid)
	if !a.InSyscall {
		t.Errorf("thread blocked in read(2) not reported as in a syscall")
	}
	if a.Tid() != pid {
		t.Errorf("attached thread %d, want the main thread %d", a.Tid(), pid)
	}
	got, err := a.Call(unix.SYS_GETPID)
	if err != nil || int(got) != pid {
		t.Fatalf("injected getpid = %d, %v; want %d", got, err, pid)
	}
	// an error comes back as the errno
	if _, err := a.Call(unix.SYS_CLOSE, ^uint64(0)); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("injected close(-1): %v, want EBADF", err)
	}
	// scratch memory is the tracee's
	addr, err := a.Scratch(100)
	if err != nil {
		t.Fatal(err)
	}
	if err := linux.TraceeWrite(pid, addr, []byte("vmux")); err != nil {
		t.Fatal(err)
	}
	if err := a.Detach(); err != nil {
		t.Fatal(err)
	}
	// the interrupted read was restarted, not failed with EINTR
	fmt.Fprintln(tg.stdin, "hello")
	if l := tg.line(t); l != "got hello" {
		t.Fatalf("after detach the target said %q", l)
	}
	if err := tg.cmd.Wait(); err != nil {
		t.Fatalf("target: %v", err)
	}
}

func TestInterruptedSleepRestarts(t *testing.T) {
	testutil.MustRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tg := startTarget(t, "sleep")
	pid := tg.cmd.Process.Pid
	waitIn(t, pid, unix.SYS_NANOSLEEP)
	a := attach(t, pid)
	if int64(a.Saved().Rax) != sysRestartSyscall {
		t.Errorf("saved rax %d, want restart_syscall (%d)", int64(a.Saved().Rax), sysRestartSyscall)
	}
	if _, err := a.Call(unix.SYS_GETTID); err != nil {
		t.Fatal(err)
	}
	if err := a.Detach(); err != nil {
		t.Fatal(err)
	}
	l := tg.line(t)
	ms, err := strconv.Atoi(strings.TrimPrefix(l, "slept "))
	if err != nil {
		t.Fatalf("target said %q", l)
	}
	if ms < 400 {
		t.Fatalf("interrupted 400 ms sleep lasted %d ms: not restarted with the time left", ms)
	}
}

func TestInjectIntoSpinningThread(t *testing.T) {
	testutil.MustRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tg := startTarget(t, "spin")
	pid := tg.cmd.Process.Pid
	for i := 0; i < 20; i++ {
		a := attach(t, pid)
		if got, err := a.Call(unix.SYS_GETPID); err != nil || int(got) != pid {
			t.Fatalf("round %d: getpid = %d, %v", i, got, err)
		}
		if err := a.Detach(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	tg.stdin.Close()
	l := tg.line(t)
	var n, x, want uint64
	if _, err := fmt.Sscanf(l, "sum %d %d", &n, &x); err != nil {
		t.Fatalf("target said %q", l)
	}
	if want = spinCheck(n); x != want {
		t.Fatalf("computation disturbed by injection: %d, want %d", x, want)
	}
	if err := tg.cmd.Wait(); err != nil {
		t.Fatalf("target: %v (registers not restored?)", err)
	}
}

func TestInstallFD(t *testing.T) {
	testutil.MustRoot(t)
	testutil.CheckFDs(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tg := startTarget(t, "read")
	pid := tg.cmd.Process.Pid
	waitIn(t, pid, unix.SYS_READ)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := attach(t, pid)
	remote, err := InstallFD(a.Injector, pid, int(w.Fd()))
	w.Close()
	if err != nil {
		a.Detach()
		t.Fatal(err)
	}
	addr, err := a.Scratch(64)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("from inside")
	if err := linux.TraceeWrite(pid, addr, msg); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Call(unix.SYS_WRITE, uint64(remote), addr, uint64(len(msg))); err != nil || int(n) != len(msg) {
		t.Fatalf("injected write on the installed fd: %d, %v", n, err)
	}
	if _, err := a.Call(unix.SYS_CLOSE, uint64(remote)); err != nil {
		t.Fatal(err)
	}
	if err := a.Detach(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != string(msg) {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
	fmt.Fprintln(tg.stdin, "bye")
	if l := tg.line(t); l != "got bye" {
		t.Fatalf("target said %q", l)
	}
}

// TestFromSyscallExitStop is how dilate's exec hook uses the injector: its
// tracer already holds the thread at a syscall-exit stop.
func TestFromSyscallExitStop(t *testing.T) {
	testutil.MustRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tg := startTarget(t, "syscalls")
	pid := tg.cmd.Process.Pid
	if err := linux.PtraceSeize(pid, linux.PtraceOTraceSysGood); err != nil {
		t.Fatal(err)
	}
	if err := linux.PtraceInterrupt(pid); err != nil {
		t.Fatal(err)
	}
	if _, err := waitStop(pid); err != nil {
		t.Fatal(err)
	}
	// run to a syscall-entry stop, then to its exit stop
	for i := 0; i < 2; i++ {
		if err := linux.PtraceSyscall(pid, 0); err != nil {
			t.Fatal(err)
		}
		for {
			ws, err := waitStop(pid)
			if err != nil {
				t.Fatal(err)
			}
			if ws.StopSignal() == syscall.SIGTRAP|0x80 {
				break
			}
			linux.PtraceSyscall(pid, 0)
		}
	}
	var regs linux.Regs
	if err := linux.PtraceGetRegs(pid, &regs); err != nil {
		t.Fatal(err)
	}
	insn, err := FindSyscallInsn(pid)
	if err != nil {
		t.Fatal(err)
	}
	in := NewInjector(pid, regs, insn)
	for i := 0; i < 3; i++ {
		if got, err := in.Call(unix.SYS_GETPID); err != nil || int(got) != pid {
			t.Fatalf("getpid = %d, %v", got, err)
		}
	}
	if _, err := in.Finish(); err != nil {
		t.Fatal(err)
	}
	var after linux.Regs
	linux.PtraceGetRegs(pid, &after)
	if after != regs {
		t.Fatalf("registers not restored:\n got %+v\nwant %+v", after, regs)
	}
	if err := linux.PtraceDetach(pid, 0); err != nil {
		t.Fatal(err)
	}
	tg.stdin.Close()
	if l := tg.line(t); l != "done" {
		t.Fatalf("target said %q", l)
	}
	if err := tg.cmd.Wait(); err != nil {
		t.Fatalf("target: %v", err)
	}
}

func TestAttachTracedFails(t *testing.T) {
	testutil.MustRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tg := startTarget(t, "read")
	pid := tg.cmd.Process.Pid
	a := attach(t, pid)
	defer a.Detach()
	// a second tracer (this same process counts: one tracer per thread)
	// cannot seize it; Attach moves on to other threads, all free, so use
	// the thread directly
	if _, err := attachThread(pid, pid); !errors.Is(err, ErrTraced) && !errors.Is(err, syscall.EPERM) {
		t.Fatalf("second seize of a traced thread: %v, want ErrTraced", err)
	}
}

func TestAttachGone(t *testing.T) {
	if _, err := Attach(1 << 30); !errors.Is(err, ErrGone) {
		t.Fatalf("Attach to no process: %v, want ErrGone", err)
	}
}

func TestRestartRegs(t *testing.T) {
	neg := func(v int64) uint64 { return uint64(-v) }
	cases := []struct {
		orig, rax, wantRax uint64
		restart            bool
	}{
		{0, neg(int64(errRestartSys)), 0, true},
		{7, neg(int64(errRestartNoHand)), 7, true},
		{7, neg(int64(errRestartNoIntr)), 7, true},
		{35, neg(int64(errRestartRestartBlock)), sysRestartSyscall, true},
		{7, neg(int64(syscall.EINTR)), neg(int64(syscall.EINTR)), false},
		{^uint64(0), neg(int64(errRestartSys)), neg(int64(errRestartSys)), false}, // not in a syscall
	}
	for _, c := range cases {
		r := linux.Regs{Orig_rax: c.orig, Rax: c.rax, Rip: 0x1002}
		got, restart := RestartRegs(r)
		if restart != c.restart || got.Rax != c.wantRax {
			t.Errorf("orig %d rax %d: rax %d restart %v; want %d %v", int64(c.orig), int64(c.rax), int64(got.Rax), restart, int64(c.wantRax), c.restart)
		}
		if restart && (got.Rip != 0x1000 || got.Orig_rax != ^uint64(0)) {
			t.Errorf("orig %d: rip %#x orig_rax %d", c.orig, got.Rip, int64(got.Orig_rax))
		}
	}
}

func TestBatch(t *testing.T) {
	testutil.MustRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tg := startTarget(t, "read")
	pid := tg.cmd.Process.Pid
	waitIn(t, pid, unix.SYS_READ)
	a := attach(t, pid)
	calls := []Syscall{{Nr: unix.SYS_GETPID}, {Nr: unix.SYS_CLOSE, Args: [6]uint64{^uint64(0)}}, {Nr: unix.SYS_GETTID}}
	for round := 0; round < 3; round++ {
		if err := a.Batch(calls); err != nil {
			t.Fatal(err)
		}
		if int(calls[0].Ret) != pid || calls[0].Err() != nil {
			t.Fatalf("getpid in batch: %d", calls[0].Ret)
		}
		if !errors.Is(calls[1].Err(), syscall.EBADF) {
			t.Fatalf("close(-1) in batch: %v", calls[1].Err())
		}
		if int(calls[2].Ret) != a.Tid() {
			t.Fatalf("gettid in batch: %d", calls[2].Ret)
		}
		// a plain call after a batch still works
		if got, err := a.Call(unix.SYS_GETPID); err != nil || int(got) != pid {
			t.Fatalf("call after batch: %d %v", got, err)
		}
	}
	if err := a.Detach(); err != nil {
		t.Fatal(err)
	}
	// no injected mapping is left behind
	maps, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/maps")
	for _, l := range strings.Split(string(maps), "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[1] == "r-xp" {
			t.Errorf("injected code page left mapped: %s", l)
		}
	}
	fmt.Fprintln(tg.stdin, "x")
	if l := tg.line(t); l != "got x" {
		t.Fatalf("target said %q", l)
	}
}

func BenchmarkInject(b *testing.B) {
	testutil.MustRoot(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := reexec.Command("", targetRole, "spin")
	in, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { in.Close(); cmd.Wait() }()
	time.Sleep(50 * time.Millisecond)
	pid := cmd.Process.Pid
	b.Run("attach-detach", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for i := 0; i < b.N; i++ {
			a, err := Attach(pid)
			if err != nil {
				b.Fatal(err)
			}
			if err := a.Detach(); err != nil {
				b.Fatal(err)
			}
		}
	})
	held := func(b *testing.B, f func(a *Attached)) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		a, err := Attach(pid)
		if err != nil {
			b.Fatal(err)
		}
		defer a.Detach()
		b.ResetTimer()
		f(a)
	}
	b.Run("call", func(b *testing.B) {
		held(b, func(a *Attached) {
			for i := 0; i < b.N; i++ {
				a.Call(unix.SYS_GETPID)
			}
		})
	})
	calls := make([]Syscall, 64)
	for i := range calls {
		calls[i].Nr = unix.SYS_GETPID
	}
	b.Run("batch64", func(b *testing.B) {
		held(b, func(a *Attached) {
			for i := 0; i < b.N; i++ {
				if err := a.Batch(calls); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func TestAgent(t *testing.T) {
	testutil.MustRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tg := startTarget(t, "read")
	pid := tg.cmd.Process.Pid
	waitIn(t, pid, unix.SYS_READ)
	fdsBefore, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	a := attach(t, pid)
	base, err := a.Call(sysMmap, 0, AgentPages*4096, ProtRead|ProtWrite, MapPrivate|MapAnon, ^uint64(0), 0)
	if err != nil {
		t.Fatal(err)
	}
	ag, err := a.StartAgent(pid, base)
	if err != nil {
		a.Detach()
		t.Fatal(err)
	}
	if err := a.Detach(); err != nil {
		t.Fatal(err)
	}
	// the agent runs calls with no thread of the target held
	for i := 0; i < 50; i++ {
		calls := []Syscall{{Nr: unix.SYS_GETPID}, {Nr: unix.SYS_GETTID}, {Nr: unix.SYS_CLOSE, Args: [6]uint64{^uint64(0)}}}
		if err := ag.Run(calls, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if int(calls[0].Ret) != pid || int(calls[1].Ret) != ag.Tid() || ag.Tid() == pid || !errors.Is(calls[2].Err(), syscall.EBADF) {
			t.Fatalf("agent calls: %d %d %v (agent %d)", calls[0].Ret, calls[1].Ret, calls[2].Err(), ag.Tid())
		}
	}
	// it blocks every signal: a process-directed one goes elsewhere
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, ag.Tid()))
	var blk uint64
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "SigBlk:"); ok {
			blk, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if blk|1<<(syscall.SIGKILL-1)|1<<(syscall.SIGSTOP-1) != ^uint64(0) {
		t.Errorf("agent blocks %#x, not every signal", blk)
	}
	if err := ag.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d", pid, ag.Tid())); err == nil {
		t.Fatalf("agent thread still there after Close")
	}
	fdsAfter, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if len(fdsAfter) != len(fdsBefore) {
		t.Errorf("target had %d descriptors before the agent, %d after it ended", len(fdsBefore), len(fdsAfter))
	}
	// the target's main thread was given back intact
	fmt.Fprintln(tg.stdin, "still")
	if l := tg.line(t); l != "got still" {
		t.Fatalf("target said %q", l)
	}
}
