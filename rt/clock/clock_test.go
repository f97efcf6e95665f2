package clock

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/reexec"
	"github.com/vmux/vmux/rt/vclock"
)

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

func newClock(t *testing.T, k string) *Clock {
	t.Helper()
	tdf, err := vclock.ParseTDF(k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New("test-"+strconv.Itoa(os.Getpid()), vclock.Config{TDF: tdf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClockLifecycle(t *testing.T) {
	c := newClock(t, "10")
	p, err := c.Load()
	if err != nil || p.TDF != (vclock.TDF{Num: 10, Den: 1}) || p.Paused {
		t.Fatalf("Load: %+v %v", p, err)
	}
	v, err := c.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	s0 := v.Seq()
	if _, err := c.SetTDF(vclock.TDF{Num: 5, Den: 2}); err != nil {
		t.Fatal(err)
	}
	q, s1, err := v.LoadSeq()
	if err != nil || q.TDF != (vclock.TDF{Num: 5, Den: 2}) {
		t.Fatalf("view after SetTDF: %+v %v", q, err)
	}
	if s1 != s0+2 {
		t.Errorf("seq %d -> %d, want +2 per write", s0, s1)
	}
	if _, err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if q, _ := v.Load(); !q.Paused {
		t.Error("pause not seen by the view")
	}
	bad := q
	bad.Mult++
	if err := c.Store(bad); err == nil {
		t.Error("Store accepted an incoherent page")
	}
	if s := linux.SharedLoad64(c.mem, vclock.PageOffSeq); s&1 != 0 {
		t.Errorf("seq %d left odd after a refused Store", s)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
	if _, err := c.SetTDF(vclock.One); !errors.Is(err, ErrClosed) {
		t.Errorf("SetTDF after Close: %v", err)
	}
	// The reader keeps the last parameters.
	if q, err := v.Load(); err != nil || !q.Paused {
		t.Errorf("view after the owner closed: %+v %v", q, err)
	}
	if _, err := New("", vclock.Config{}); err == nil {
		t.Error("New without a TDF succeeded")
	}
}

// TestPageCannotBeWritten is the attack of issue 10 item 8: a dilated
// program reopened the supervisor's clock memfd read-write through
// /proc/PPID/fd and raised its own clock's rate. Every descriptor of the
// page, even reopened read-write, must refuse writes and writable shared
// mappings; only the owner's mapping writes.
func TestPageCannotBeWritten(t *testing.T) {
	c := newClock(t, "10")
	ro, err := c.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	paths := []string{fmt.Sprintf("/proc/self/fd/%d", ro.Fd()), fmt.Sprintf("/proc/self/fd/%d", c.f.Fd())}
	for _, path := range paths {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Logf("%s: reopen refused: %v", path, err)
			continue // refused outright: fine
		}
		t.Logf("%s: reopened read-write", path)
		if _, err := f.WriteAt(make([]byte, 8), vclock.PageOffMult); err == nil {
			t.Errorf("%s: write through a reopened descriptor succeeded", path)
		}
		if b, err := unix.Mmap(int(f.Fd()), 0, vclock.PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
			unix.Munmap(b)
			t.Errorf("%s: shared writable mapping succeeded", path)
		} else if !errors.Is(err, syscall.EPERM) {
			t.Errorf("%s: mmap: %v, want EPERM", path, err)
		}
		if err := f.Truncate(0); err == nil {
			t.Errorf("%s: truncate succeeded", path)
		}
		f.Close()
	}
	if p, err := c.Load(); err != nil || p.TDF != (vclock.TDF{Num: 10, Den: 1}) {
		t.Errorf("page changed: %+v %v", p, err)
	}
	// The owner still writes.
	if _, err := c.SetTDF(vclock.TDF{Num: 2, Den: 1}); err != nil {
		t.Errorf("owner's write: %v", err)
	}
}

// TestReaderGivesUpOnStuckWriter: a sequence left odd (the owner killed
// inside a write) makes readers fail with ErrWriterStuck, not spin forever.
func TestReaderGivesUpOnStuckWriter(t *testing.T) {
	defer func(d time.Duration) { writerGiveUp = d }(writerGiveUp)
	writerGiveUp = 100 * time.Millisecond
	c := newClock(t, "3")
	v, err := c.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c.mu.Lock()
	c.begin()
	start := time.Now()
	_, err = v.Load()
	c.end()
	c.mu.Unlock()
	if !errors.Is(err, ErrWriterStuck) {
		t.Fatalf("Load with the writer inside: %v, want ErrWriterStuck", err)
	}
	if d := time.Since(start); d < writerGiveUp || d > 10*writerGiveUp {
		t.Errorf("gave up after %v, want about %v", d, writerGiveUp)
	}
	if _, err := v.Load(); err != nil {
		t.Errorf("Load after the write ended: %v", err)
	}
}

// TestVirtualTimeNeverStepsBack: readers racing rate changes and pauses
// never see virtual time go backwards.
func TestVirtualTimeNeverStepsBack(t *testing.T) {
	c := newClock(t, "4")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 3 {
		v, err := c.View()
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				virt, _, err := v.Now(vclock.Monotonic)
				if err != nil {
					errs <- err
					return
				}
				if virt < last {
					errs <- fmt.Errorf("virtual monotonic stepped back %d ns", last-virt)
					return
				}
				last = virt
			}
		}()
	}
	ks := []vclock.TDF{{Num: 1, Den: 3}, {Num: 10, Den: 1}, {Num: 7, Den: 2}}
	for i := range 300 {
		var err error
		switch i % 4 {
		case 0, 1:
			_, err = c.SetTDF(ks[i%len(ks)])
		case 2:
			_, err = c.Pause()
		case 3:
			_, err = c.Resume()
		}
		if err != nil {
			t.Fatal(err)
		}
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
