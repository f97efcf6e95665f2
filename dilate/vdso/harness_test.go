package vdso

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

var (
	harnessOnce sync.Once
	harnessBin  string
	harnessErr  error
	harnessDir  string
)

// TestMain removes the harness build and fails the run if any test left a
// child process (a harness) or a clock memfd behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if harnessDir != "" {
		os.RemoveAll(harnessDir)
	}
	if leaks := leftovers(); len(leaks) > 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "leaked after the tests: %s\n", strings.Join(leaks, "; "))
		code = 1
	}
	os.Exit(code)
}

// leftovers lists this process's remaining children and clock memfds.
func leftovers() []string {
	var out []string
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, f := range tasks {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) != "" {
			out = append(out, "child processes "+strings.TrimSpace(string(b)))
		}
	}
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && strings.Contains(link, clock.MemfdName) {
			out = append(out, "clock memfd "+fd)
		}
	}
	return out
}

// buildHarness compiles testdata/harness.c once per test binary.
func buildHarness(t testing.TB) string {
	t.Helper()
	gcc := testutil.MustHaveCommand(t, "gcc")
	harnessOnce.Do(func() {
		harnessDir, harnessErr = os.MkdirTemp("", "vmux-vdso-harness-")
		if harnessErr != nil {
			return
		}
		harnessBin = filepath.Join(harnessDir, "harness")
		out, err := exec.Command(gcc, "-O2", "-Wall", "-Werror", "-pthread", "-o", harnessBin, "testdata/harness.c", "-ldl").CombinedOutput()
		if err != nil {
			harnessErr = fmt.Errorf("compiling harness: %v\n%s", err, out)
		}
	})
	if harnessErr != nil {
		t.Fatal(harnessErr)
	}
	return harnessBin
}

// realVDSO returns this process's own vDSO bytes.
func realVDSO(t testing.TB) []byte {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(maps), "\n") {
		if !strings.HasSuffix(l, "[vdso]") {
			continue
		}
		var lo, hi uint64
		if _, err := fmt.Sscanf(l, "%x-%x", &lo, &hi); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open("/proc/self/mem")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, hi-lo)
		if _, err := f.ReadAt(b, int64(lo)); err != nil {
			t.Fatalf("reading own vDSO: %v", err)
		}
		return b
	}
	t.Fatal("no [vdso] mapping in /proc/self/maps")
	return nil
}

// harness is a running testdata/harness.c with the region mapped.
type harness struct {
	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startHarness(t testing.TB, clk *clock.Clock, env ...string) *harness {
	t.Helper()
	bin := buildHarness(t)
	real, err := ParseVDSO(realVDSO(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err := ImageSymbols()
	if err != nil {
		t.Fatal(err)
	}
	imgPath := filepath.Join(t.TempDir(), "vdso.so")
	if err := os.WriteFile(imgPath, Image(), 0o644); err != nil {
		t.Fatal(err)
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	args := []string{imgPath, u(ImageSize), u(RegionSize), u(ProcPageOffset), u(ClockPageOffset),
		u(img.ClockGettime), u(img.Gettimeofday), u(img.Time), u(img.ClockGetres), u(img.Getcpu),
		u(real.ClockGettime) + "," + u(real.Gettimeofday) + "," + u(real.Time) + "," + u(real.ClockGetres) + "," + u(real.Getcpu)}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	ro, err := clk.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	cmd.ExtraFiles = []*os.File{ro}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(h.stop)
	return h
}

// stop ends the harness and reaps it, on every exit path of the test.
func (h *harness) stop() {
	if h.cmd.ProcessState != nil {
		return
	}
	fmt.Fprintln(h.in, "q")
	h.in.Close()
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			h.t.Errorf("harness exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-done
		h.t.Error("harness did not quit; killed")
	}
}

// do sends one command and returns n reply lines split into int64 fields.
func (h *harness) do(cmd string, n int) [][]int64 {
	h.t.Helper()
	if _, err := fmt.Fprintln(h.in, cmd); err != nil {
		h.t.Fatalf("harness %q: %v", cmd, err)
	}
	var rows [][]int64
	for range n {
		if !h.out.Scan() {
			h.t.Fatalf("harness %q: no reply (%v)", cmd, h.out.Err())
		}
		var row []int64
		for _, f := range strings.Fields(h.out.Text()) {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				h.t.Fatalf("harness %q: reply %q", cmd, h.out.Text())
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}

// line sends one command and returns its raw reply.
func (h *harness) line(cmd string) string {
	h.t.Helper()
	fmt.Fprintln(h.in, cmd)
	if !h.out.Scan() {
		h.t.Fatalf("harness %q: no reply", cmd)
	}
	return h.out.Text()
}

func newTestClock(t testing.TB, k string) *clock.Clock {
	t.Helper()
	tdf, err := vclock.ParseTDF(k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := clock.New("", vclock.Config{TDF: tdf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustLoad(t testing.TB, c *clock.Clock) vclock.Params {
	t.Helper()
	p, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var wallIDs = []vclock.ClockID{vclock.Realtime, vclock.Monotonic, vclock.MonotonicRaw, vclock.RealtimeCoarse,
	vclock.MonotonicCoarse, vclock.Boottime, vclock.TAI}

// checkReads asserts that every dilated read lies between the Go math
// applied to the real reads just before and just after it.
func checkReads(t *testing.T, p vclock.Params, id vclock.ClockID, rows [][]int64) {
	t.Helper()
	for _, r := range rows {
		if r[0] != 0 {
			t.Fatalf("%v: replacement returned %d", id, r[0])
		}
		lo, hi := p.Virt(id, r[1]), p.Virt(id, r[3])
		if r[2] < lo || r[2] > hi {
			t.Fatalf("%v at k=%v: virtual %d outside [%d, %d] (real %d..%d)", id, p.TDF, r[2], lo, hi, r[1], r[3])
		}
	}
}

func TestHarnessDilation(t *testing.T) {
	clk := newTestClock(t, "1")
	h := startHarness(t, clk)
	for _, k := range []string{"10", "0.5", "1/3"} {
		tdf, _ := vclock.ParseTDF(k)
		p, err := clk.SetTDF(tdf)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // let virtual and real time diverge
		for _, id := range wallIDs {
			checkReads(t, p, id, h.do(fmt.Sprintf("r %d 50", id), 50))
		}
		// The rate itself: 30 ms real apart reads 30/k ms virtual apart.
		a := h.do("r 1 1", 1)[0]
		time.Sleep(30 * time.Millisecond)
		b := h.do("r 1 1", 1)[0]
		got, want := float64(b[2]-a[2]), float64(b[1]-a[1])/tdf.Float64()
		if d := got - want; d > want*0.01+float64(b[3]-b[1]+a[3]-a[1])/tdf.Float64()+10 || d < -want*0.01-float64(b[3]-b[1]+a[3]-a[1])/tdf.Float64()-10 {
			t.Errorf("k=%s: %.0f ns virtual for %.0f ns real, want %.0f", k, got, float64(b[1]-a[1]), want)
		}
		// gettimeofday and time come from virtual REALTIME.
		for _, r := range h.do("g", 1) {
			lo, hi := p.Virt(vclock.Realtime, r[1]), p.Virt(vclock.Realtime, r[3])
			if r[0] != 0 || r[2] < lo/1000*1000 || r[2] > hi || r[4] != 1 {
				t.Errorf("gettimeofday at k=%s: ret %d %d not in [%d, %d], tz filled %d", k, r[0], r[2], lo, hi, r[4])
			}
		}
		for _, r := range h.do("t", 1) {
			lo, hi := p.Virt(vclock.RealtimeCoarse, r[1]), p.Virt(vclock.RealtimeCoarse, r[3])
			if r[0] != 0 || r[2] < lo/1e9*1e9 || r[2] > hi {
				t.Errorf("time at k=%s: %d not in [%d, %d] (ret/arg mismatch %d)", k, r[2], lo, hi, r[0])
			}
		}
	}
}

func TestHarnessPassThrough(t *testing.T) {
	clk := newTestClock(t, "10")
	h := startHarness(t, clk)
	// CPU-time clocks are scaled by the supervisor's syscall path, not here.
	for _, id := range []vclock.ClockID{vclock.ProcessCPUTime, vclock.ThreadCPUTime} {
		for _, r := range h.do(fmt.Sprintf("r %d 20", id), 20) {
			if r[0] != 0 || r[2] < r[1] || r[2] > r[3] {
				t.Fatalf("%v not passed through: %v", id, r)
			}
		}
	}
	// The alarm clocks go to the kernel from the replacement (the supervisor
	// dilates that syscall): here, without a supervisor, they read real.
	for _, id := range []vclock.ClockID{vclock.RealtimeAlarm, vclock.BoottimeAlarm} {
		for _, r := range h.do(fmt.Sprintf("r %d 5", id), 5) {
			_, err := linux.ClockGettime(int32(id))
			if r[0] == -22 && err != nil {
				continue // no alarm timer (RTC) on this machine: the kernel's answer
			}
			if r[0] != 0 || r[2] < r[1] || r[2] > r[3] {
				t.Fatalf("%v not passed to the kernel: %v (kernel says %v)", id, r, err)
			}
		}
	}
	// Unknown ids get the real vDSO's answer (-EINVAL).
	for _, id := range []int{10, 12, -5, 1 << 20} {
		r := h.do(fmt.Sprintf("r %d 1", id), 1)[0]
		if r[0] != -22 {
			t.Errorf("clock %d: ret %d, want -EINVAL (-22)", id, r[0])
		}
	}
	// clock_getres reports the real resolution (see doc.go).
	for _, id := range []int{0, 1, 2, 4, 5, 6, 7, 11, 10} {
		r := h.do(fmt.Sprintf("res %d", id), 1)[0]
		if r[0] != r[2] || r[1] != r[3] {
			t.Errorf("clock_getres(%d): real %d/%d, replacement %d/%d", id, r[0], r[1], r[2], r[3])
		}
	}
	r := h.do("cpu", 1)[0]
	if r[0] != 0 || r[2] != 0 || r[1] < 0 || r[3] < 0 || r[3] > 1024 {
		t.Errorf("getcpu: %v", r)
	}
}

func TestHarnessPauseResume(t *testing.T) {
	clk := newTestClock(t, "2")
	h := startHarness(t, clk)
	time.Sleep(5 * time.Millisecond)
	p, err := clk.Pause()
	if err != nil {
		t.Fatal(err)
	}
	frozen := h.do("r 1 1", 1)[0][2]
	if want := p.Bases[vclock.Monotonic].Virt; frozen != want {
		t.Errorf("paused MONOTONIC reads %d, want the frozen %d", frozen, want)
	}
	time.Sleep(20 * time.Millisecond)
	for _, id := range wallIDs {
		for _, r := range h.do(fmt.Sprintf("r %d 5", id), 5) {
			if r[2] != p.Bases[id].Virt {
				t.Fatalf("%v moved while paused: %d, frozen at %d", id, r[2], p.Bases[id].Virt)
			}
		}
	}
	before := time.Now()
	if _, err := clk.Resume(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	after := h.do("r 1 1", 1)[0]
	took := time.Since(before)
	// Resumed from the frozen value, at k = 2: 20 ms real -> >= 10 ms
	// virtual, and no more than half the real time since Resume began.
	if d := after[2] - frozen; d < 10e6 || d > int64(took/2)+2 {
		t.Errorf("after resume MONOTONIC advanced %d ns from the frozen value, want [10 ms, %v]", d, took/2)
	}
	checkReads(t, mustLoad(t, clk), vclock.Monotonic, [][]int64{after})
}

// TestHarnessRateChangesNeverStepBack has two threads of the harness read
// MONOTONIC and BOOTTIME through the replacement as fast as they can while
// this process changes the rate, pauses and resumes as fast as it can.
func TestHarnessRateChangesNeverStepBack(t *testing.T) {
	clk := newTestClock(t, "1")
	h := startHarness(t, clk)
	ks := []vclock.TDF{{Num: 10, Den: 1}, {Num: 1, Den: 2}, {Num: 1, Den: 3}, {Num: 100, Den: 1}, {Num: 1, Den: 1}, {Num: 1, Den: 1000}}
	for _, id := range []vclock.ClockID{vclock.Monotonic, vclock.Boottime, vclock.Realtime} {
		// Rounds of reads until enough changes landed during them: how
		// many do per round depends on the scheduler of a busy machine.
		total, rounds := 0, 0
		for ; total < 200 && rounds < 100; rounds++ {
			stop := make(chan struct{})
			changes := make(chan int)
			go func() {
				n := 0
				defer func() { changes <- n }()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					switch i % 4 {
					case 0, 1:
						_, err = clk.SetTDF(ks[i%len(ks)])
					case 2:
						_, err = clk.Pause()
					case 3:
						_, err = clk.Resume()
					}
					if err != nil {
						t.Error(err)
						return
					}
					n++
				}
			}()
			reply := h.line(fmt.Sprintf("mono %d 100000 2", id))
			close(stop)
			n := <-changes
			if reply != "ok" {
				t.Fatalf("%v: %s (after %d changes)", id, reply, n)
			}
			total += n
		}
		if total < 200 {
			t.Fatalf("%v: only %d rate changes during %d rounds of reads: the test proved little", id, total, rounds)
		}
		t.Logf("%v: %d rounds of 2 threads x 100000 reads, %d rate changes/pauses, no step back", id, rounds, total)
	}
}
