package tcpfreeze

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
)

// pauseOnce streams from a to b over p, pauses the forwarder for hold
// (freezing a's sockets first when freeze is set, releasing them after
// the first packet delivered into a after the resume) and returns what
// a's TCP counters did across it, and the Frozen's stats.
func pauseOnce(t *testing.T, p *pair, freeze bool, hold time.Duration) (retrans, Stats) {
	t.Helper()
	ln := p.listen()
	c, s := p.dial(ln)
	drain(s)
	stop := make(chan struct{})
	wg := stream(c, 1024, time.Millisecond, stop) // 8 Mbit/s: always in flight
	defer func() { close(stop); c.Close(); wg.Wait() }()
	time.Sleep(300 * time.Millisecond)
	before := p.retrans(0)
	var f *Frozen
	if freeze {
		var err error
		if f, err = Freeze([]Target{p.target(0)}, Options{}); err != nil {
			t.Fatal(err)
		}
		defer f.Release()
	}
	p.pause()
	time.Sleep(hold)
	during := p.retrans(0).minus(before)
	seen := p.watch(0)
	p.resume()
	if f != nil {
		select {
		case <-seen:
		case <-time.After(time.Second):
			t.Error("nothing delivered into a within 1 s of the resume")
		}
		if err := f.Release(); err != nil {
			t.Error(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	after := p.retrans(0).minus(before)
	t.Logf("freeze %v: during the pause %+v, 500 ms after %+v", freeze, during, after)
	var st Stats
	if f != nil {
		st = f.Stats()
		t.Logf("stats %+v", st)
	}
	return after, st
}

// TestFreezeDefersRetransmission: a stream with data always in flight,
// paused for 2 s: without a freeze its sender times out and retransmits
// (the failure this package exists for); with its socket held from
// before the pause to after the first packet delivered to it after the
// resume, it does neither.
func TestFreezeDefersRetransmission(t *testing.T) {
	testutil.MustRoot(t)
	p := newPair(t, 10*time.Millisecond)
	t.Run("baseline", func(t *testing.T) {
		r, _ := pauseOnce(t, p, false, 2*time.Second)
		if r.Timeouts == 0 || r.Segs == 0 {
			t.Errorf("no retransmission across an unfrozen pause (%+v): the test does not test anything", r)
		}
	})
	t.Run("frozen", func(t *testing.T) {
		r, st := pauseOnce(t, p, true, 2*time.Second)
		if r != (retrans{}) {
			t.Errorf("retransmitted across a frozen pause: %+v", r)
		}
		if st.Held != 1 || st.Pending+st.Skipped+st.Failed+st.Unreachable != 0 {
			t.Errorf("stats %+v, want the one socket held", st)
		}
	})
}

// TestFreezeSelects: only sockets with data in flight through the
// emulator are held: not idle ones, not loopback ones.
func TestFreezeSelects(t *testing.T) {
	testutil.MustRoot(t)
	p := newPair(t, 10*time.Millisecond)
	ln := p.listen()
	idle, _ := p.dial(ln)
	busy, s := p.dial(ln)
	drain(s)
	stop := make(chan struct{})
	wg := stream(busy, 1024, time.Millisecond, stop)
	defer func() { close(stop); busy.Close(); wg.Wait() }()
	// A loopback pair in a with unread data both ways.
	var lb *netConn
	if err := linux.InNetns(p.ns[0], func() (err error) { lb, err = loopbackPair(); return }); err != nil {
		t.Fatal(err)
	}
	defer lb.close()
	time.Sleep(200 * time.Millisecond)
	p.pause()
	defer p.resume()
	f, err := Freeze([]Target{p.target(0)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	socks := f.Sockets()
	if len(socks) != 1 {
		t.Fatalf("held %v, want only the busy socket", socks)
	}
	for _, sk := range socks {
		if sk.Local.String() != busy.LocalAddr().String() || !sk.Locked || sk.Pid != os.Getpid() {
			t.Errorf("held %+v, want %v (idle: %v)", sk, busy.LocalAddr(), idle.LocalAddr())
		}
	}
}

// TestFreezeMax: sockets over Options.Max are counted and left alone.
func TestFreezeMax(t *testing.T) {
	testutil.MustRoot(t)
	p := newPair(t, 10*time.Millisecond)
	ln := p.listen()
	stop := make(chan struct{})
	defer close(stop)
	for range 4 {
		c, s := p.dial(ln)
		drain(s)
		wg := stream(c, 512, time.Millisecond, stop)
		defer wg.Wait()
		defer c.Close()
	}
	time.Sleep(200 * time.Millisecond)
	p.pause()
	defer p.resume()
	f, err := Freeze([]Target{p.target(0)}, Options{Max: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if st := f.Stats(); st.InFlight != 4 || st.Held != 2 || st.Skipped != 2 {
		t.Errorf("stats %+v, want 4 in flight, 2 held, 2 skipped", st)
	}
	// Add finds nothing new: the held ones are known, the skipped ones
	// still do not fit.
	st, err := f.Add([]Target{p.target(0)})
	if err != nil || st.Held != 0 || st.Skipped != 2 || st.InFlight != 2 {
		t.Errorf("second Add: %+v, %v; want the 2 skipped again", st, err)
	}
}

// TestFreezeRelease: Release unlocks every socket, is idempotent, and
// leaves no descriptor, uffd or thread behind; ReleaseSocket releases
// one, which Add holds again; Add after Release fails.
func TestFreezeRelease(t *testing.T) {
	testutil.MustRoot(t)
	p := newPair(t, 10*time.Millisecond)
	ln := p.listen()
	stop := make(chan struct{})
	defer close(stop)
	var conns []*netTCP
	for range 3 {
		c, s := p.dial(ln)
		drain(s)
		wg := stream(c, 512, time.Millisecond, stop)
		defer wg.Wait()
		defer c.Close()
		conns = append(conns, &netTCP{c})
	}
	time.Sleep(200 * time.Millisecond)
	round := func() {
		p.pause()
		defer p.resume()
		f, err := Freeze([]Target{p.target(0)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if n := countUffds(t); n != 1 {
			t.Errorf("%d userfaultfds open while frozen, want 1", n)
		}
		socks := f.Sockets()
		if len(socks) != 3 {
			t.Fatalf("held %d sockets, want 3", len(socks))
		}
		// Each is locked: TCP_INFO (which takes the lock) blocks.
		for _, c := range conns {
			if !c.infoBlocks(t) {
				t.Error("a held socket is not locked")
			}
		}
		if err := f.ReleaseSocket(0); err != nil {
			t.Fatal(err)
		}
		if err := f.ReleaseSocket(0); err != nil {
			t.Fatalf("second release of one socket: %v", err)
		}
		if len(f.Sockets()) != 2 {
			t.Errorf("after one release: %v", f.Sockets())
		}
		// Released, still in flight: the next Add holds it again (a pause
		// that takes over a resume's sockets).
		if st, err := f.Add([]Target{p.target(0)}); err != nil || st.Held != 1 {
			t.Errorf("Add after ReleaseSocket: %+v, %v; want the released socket held again", st, err)
		}
		if len(f.Sockets()) != 3 {
			t.Errorf("after holding it again: %v", f.Sockets())
		}
		for range 2 {
			if err := f.Release(); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range conns {
			if c.infoBlocks(t) {
				t.Error("a released socket is still locked")
			}
		}
		if _, err := f.Add([]Target{p.target(0)}); !errors.Is(err, ErrReleased) {
			t.Errorf("Add after Release: %v, want ErrReleased", err)
		}
		if n := countUffds(t); n != 0 {
			t.Errorf("%d userfaultfds left open", n)
		}
	}
	round() // grows the runtime's idle thread pool (see checkThreads)
	testutil.CheckFDs(t)
	checkThreads(t)
	for range 3 {
		round()
	}
}

// countUffds counts this process's open userfaultfds.
func countUffds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err == nil && linux.IsUffd(fd) {
			n++
		}
	}
	return n
}
