package netem

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/vclock"
)

// vclockAt makes an experiment clock at k and a view of it for the
// emulator.
func vclockAt(t testing.TB, k vclock.TDF) (*clock.Clock, *clock.View) {
	t.Helper()
	c, err := clock.New("", vclock.Config{TDF: k})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.View()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(); c.Close() })
	return c, v
}

func virtNow(t *testing.T, v *clock.View) time.Duration {
	t.Helper()
	n, _, err := v.Now(vclock.Monotonic)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(n)
}

// TestVirtualTimeLinks: in virtual mode a link's latency is its virtual
// (spec) value on the clock, whatever k is: 5 ms at k = 10 take 50 ms of
// real time, and a change of k to 4 while the packet is in flight moves
// its real arrival, not its virtual one.
func TestVirtualTimeLinks(t *testing.T) {
	n := compile(t, "name: vt\ntdf: 10\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b], latency: 5ms}]\n")
	c, v := vclockAt(t, vclock.TDF{Num: 10, Den: 1})
	bestOf(t, 5, func() error {
		// Each attempt starts at k = 10 (a failed one may have left 4).
		if _, err := c.SetTDF(vclock.TDF{Num: 10, Den: 1}); err != nil {
			t.Fatal(err)
		}
		e, nodes := fakeNet(t, n, Options{Clock: v})
		a, b := addr(t, e, "a"), addr(t, e, "b")
		start, vstart := time.Now(), virtNow(t, v)
		nodes["a"].Write(ipv4(a, b, 100, 1))
		readTimeout(t, nodes["b"], 5*time.Second)
		real, virt := time.Since(start), virtNow(t, v)-vstart
		if virt < 5*time.Millisecond {
			t.Fatalf("arrived after %v virtual, before the 5 ms latency", virt)
		}
		if real < 50*time.Millisecond || real > 60*time.Millisecond {
			return fmt.Errorf("5 ms virtual at k=10 took %v real, want 50 ms (+10)", real)
		}
		// k 10 -> 4 with the packet half-way: 2.5 ms virtual were 25 ms
		// real, the other 2.5 ms take 10 ms at k = 4.
		start, vstart = time.Now(), virtNow(t, v)
		nodes["a"].Write(ipv4(a, b, 100, 2))
		time.Sleep(25 * time.Millisecond)
		if _, err := c.SetTDF(vclock.TDF{Num: 4, Den: 1}); err != nil {
			t.Fatal(err)
		}
		e.ClockChanged()
		readTimeout(t, nodes["b"], 5*time.Second)
		real, virt = time.Since(start), virtNow(t, v)-vstart
		if virt < 5*time.Millisecond {
			t.Fatalf("arrived after %v virtual across the change, before the 5 ms latency", virt)
		}
		if real < 33*time.Millisecond || real > 45*time.Millisecond {
			return fmt.Errorf("across k 10 -> 4: took %v real, want about 35 ms", real)
		}
		return nil
	})
}

// TestVirtualTimePause: while the clock is paused nothing in flight is
// delivered or dropped; after resume everything arrives, in order, with
// its virtual latency, and the pause added no virtual time.
func TestVirtualTimePause(t *testing.T) {
	n := compile(t, "name: vp\ntdf: 10\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b], latency: 2ms, bandwidth: 10Mbit, queue: 1MiB}]\n")
	c, v := vclockAt(t, vclock.TDF{Num: 10, Den: 1})
	e, nodes := fakeNet(t, n, Options{Clock: v})
	a, b := addr(t, e, "a"), addr(t, e, "b")
	const count = 50
	vstart := virtNow(t, v)
	for i := range count {
		nodes["a"].Write(ipv4(a, b, 1000, uint64(i)))
	}
	// 50 x 1000 B at 10 Mbit/s is 40 ms of transmission (virtual): pause
	// with most of them in flight.
	time.Sleep(5 * time.Millisecond)
	if _, err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	e.ClockChanged()
	delivered := e.Stats().Delivered
	vpause := virtNow(t, v)
	time.Sleep(500 * time.Millisecond)
	if d := e.Stats().Delivered; d != delivered {
		t.Fatalf("%d packets delivered during the pause", d-delivered)
	}
	if vp := virtNow(t, v); vp != vpause {
		t.Fatalf("virtual time moved %v during the pause", vp-vpause)
	}
	if delivered == count {
		t.Fatal("everything was delivered before the pause: the test paused too late")
	}
	if _, err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	e.ClockChanged()
	for i := range count {
		p := readTimeout(t, nodes["b"], 5*time.Second)
		if s := seqOf(p); s != uint64(i) {
			t.Fatalf("packet %d arrived as number %d: reordered", s, i)
		}
	}
	virt := virtNow(t, v) - vstart
	// 40 ms of transmission + 2 ms latency, virtual; the 500 ms pause
	// is not in it.
	if virt < 42*time.Millisecond || virt > 60*time.Millisecond {
		t.Errorf("the transfer took %v virtual, want about 42 ms (the pause adds none)", virt)
	}
	st := e.Stats()
	if st.Links[0].QueueDrops+st.Links[0].LossDrops != 0 {
		t.Errorf("drops across the pause: %+v", st.Links[0])
	}
}
