package vdso

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// clockFds lists this process's vmux clock memfds.
func clockFds(t *testing.T) []string {
	t.Helper()
	refs, err := clocksOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range refs {
		names = append(names, r.Name)
	}
	return names
}

func TestClockLifecycle(t *testing.T) {
	before := len(clockFds(t))
	k, _ := vclock.ParseTDF("10")
	c, err := NewClock("life", vclock.Config{TDF: k}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "vmux-clock:life" || c.Fd() < 0 || c.File() == nil {
		t.Errorf("name %q fd %d", c.Name(), c.Fd())
	}
	p := mustLoad(t, c)
	if p.TDF != k || p.Mult != k.Mult() || p.Paused {
		t.Errorf("loaded %+v", p)
	}
	// The memfd is sealed against resizing (a shrink would SIGBUS readers).
	if err := c.File().Truncate(0); err == nil {
		t.Error("clock memfd could be truncated")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Load(); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
	if _, err := c.SetTDF(k); !errors.Is(err, ErrClosed) {
		t.Errorf("SetTDF after Close: %v", err)
	}
	if n := len(clockFds(t)); n != before {
		t.Errorf("%d clock memfds left open after Close, want %d", n, before)
	}
	if _, err := NewClock("", vclock.Config{}, nil); err == nil {
		t.Error("NewClock without a TDF succeeded")
	}
}

func TestClockStoreRejectsIncoherent(t *testing.T) {
	c := newTestClock(t, "2")
	p := mustLoad(t, c)
	bad := p
	bad.Mult++
	if err := c.Store(bad); err == nil {
		t.Error("Store accepted a mult that does not match the TDF")
	}
	if q := mustLoad(t, c); q != p {
		t.Errorf("failed Store changed the page: %+v", q)
	}
	if s := linux.SharedLoad64(c.mem, vclock.PageOffSeq); s&1 != 0 {
		t.Errorf("seq %d left odd after a failed Store", s)
	}
}

// TestClockSharedAcrossOpen changes the rate through a second mapping
// opened by path, as `vmux clock set` does, and sees it in the first.
func TestClockSharedAcrossOpen(t *testing.T) {
	k, _ := vclock.ParseTDF("4")
	c, err := NewClock("shared-"+strconv.Itoa(os.Getpid()), vclock.Config{TDF: k}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ref, err := FindClock("shared-" + strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if ref.PID != os.Getpid() || ref.Run() != "shared-"+strconv.Itoa(os.Getpid()) {
		t.Errorf("found %+v", ref)
	}
	o, err := OpenClock(ref.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.Pause(); err != nil {
		t.Fatal(err)
	}
	if p := mustLoad(t, c); !p.Paused {
		t.Error("pause through the second mapping not seen")
	}
	if _, err := o.SetTDF(vclock.TDF{Num: 1, Den: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Resume(); err != nil {
		t.Fatal(err)
	}
	if p := mustLoad(t, c); p.Paused || p.TDF != (vclock.TDF{Num: 1, Den: 2}) {
		t.Errorf("after resume at 1/2: %+v", p)
	}
}

func TestFindClockErrors(t *testing.T) {
	if _, err := FindClock("no-such-run-" + strconv.Itoa(os.Getpid())); !errors.Is(err, ErrNoClock) {
		t.Errorf("unknown run: %v", err)
	}
	if _, err := FindClock(""); !errors.Is(err, ErrNoClock) {
		t.Errorf("empty: %v", err)
	}
	if _, err := FindClock("999999999"); err == nil {
		t.Error("nonexistent pid found a clock")
	}
	// Two clocks in one process: the pid alone is ambiguous.
	a := newTestClock(t, "1")
	b := newTestClock(t, "1")
	_, _ = a, b
	if _, err := FindClock(strconv.Itoa(os.Getpid())); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("two clocks in one pid: %v", err)
	}
	found := 0
	for _, r := range ListClocks() {
		if r.PID == os.Getpid() {
			found++
		}
	}
	if found < 2 {
		t.Errorf("ListClocks found %d of this process's clocks", found)
	}
	if _, err := OpenClock("/dev/null", nil); err == nil {
		t.Error("OpenClock of /dev/null succeeded")
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) uint32 {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return uint32(cmd.Process.Pid)
}

// TestClockRecoversFromDeadWriter simulates a writer killed inside the
// seqlock, in both phases, and checks that the next Load repairs the page
// to the last complete version instead of hanging the readers.
func TestClockRecoversFromDeadWriter(t *testing.T) {
	for _, phase := range []uint32{phaseIdle, phaseBackup, phaseWriting} {
		t.Run(fmt.Sprint("phase", phase), func(t *testing.T) {
			c := newTestClock(t, "3")
			good := mustLoad(t, c)
			seq := linux.SharedLoad64(c.mem, vclock.PageOffSeq)
			// The dead writer: seq odd, its pid recorded, phase set; in the
			// writing phase it had saved the backup and scribbled on main.
			c.mu.Lock()
			if err := c.lock(); err != nil {
				t.Fatal(err)
			}
			if phase == phaseWriting {
				for off := 8; off < vclock.PageUsed; off += 4 {
					if !skipWord(off) {
						linux.SharedStore32(c.mem, vclock.PageOffBackup+off, linux.SharedLoad32(c.mem, off))
					}
				}
				linux.SharedStore64(c.mem, vclock.PageOffMult, 12345)
				linux.SharedStore64(c.mem, vclock.PageOffBases+16, 999)
			}
			linux.SharedStore32(c.mem, vclock.PageOffPhase, phase)
			linux.SharedStore32(c.mem, vclock.PageOffWriter, deadPID(t))
			c.mu.Unlock()

			start := time.Now()
			p, err := c.Load()
			if err != nil {
				t.Fatal(err)
			}
			if p != good {
				t.Errorf("repaired to %+v, want the last complete %+v", p, good)
			}
			if s := linux.SharedLoad64(c.mem, vclock.PageOffSeq); s != seq+2 {
				t.Errorf("seq %d after repair, want %d (even)", s, seq+2)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("repair took %v", d)
			}
		})
	}
}

// TestClockLiveWriterTimesOut: a live writer that never finishes makes
// writers give up with ErrWriterStuck instead of spinning forever.
func TestClockLiveWriterTimesOut(t *testing.T) {
	c := newTestClock(t, "1")
	c.mu.Lock()
	if err := c.lock(); err != nil {
		t.Fatal(err)
	}
	// Our own pid: alive. Open a second handle so its lock contends.
	c.mu.Unlock()
	o, err := OpenClock(fmt.Sprintf("/proc/self/fd/%d", c.Fd()), nil)
	if err == nil {
		o.Close()
		t.Fatal("OpenClock loaded a page whose writer is inside the seqlock")
	}
	if !errors.Is(err, ErrWriterStuck) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("err %v, want ErrWriterStuck naming pid %d", err, os.Getpid())
	}
	c.mu.Lock()
	c.unlock()
	c.mu.Unlock()
	mustLoad(t, c)
}

// TestWatchdogRepairs: with no Load or write at all, the owner's watchdog
// notices a dead writer and releases the seqlock, so readers in tracees
// stop spinning.
func TestWatchdogRepairs(t *testing.T) {
	c := newTestClock(t, "3")
	good := mustLoad(t, c)
	seq := linux.SharedLoad64(c.mem, vclock.PageOffSeq)
	c.mu.Lock()
	if err := c.lock(); err != nil {
		t.Fatal(err)
	}
	linux.SharedStore32(c.mem, vclock.PageOffPhase, phaseBackup)
	linux.SharedStore32(c.mem, vclock.PageOffWriter, deadPID(t))
	c.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for linux.SharedLoad64(c.mem, vclock.PageOffSeq) == seq+1 {
		if time.Now().After(deadline) {
			t.Fatal("watchdog did not release the seqlock of a dead writer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p := mustLoad(t, c); p != good {
		t.Errorf("after the watchdog: %+v, want %+v", p, good)
	}
}
