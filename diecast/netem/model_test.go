package netem

import (
	"math"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/topology"
)

func params(bw topology.Bitrate, lat time.Duration, queue topology.ByteSize) topology.LinkParams {
	return topology.LinkParams{Bandwidth: bw, Latency: topology.Duration(lat), Queue: queue}
}

// Back-to-back packets leave one serialization time apart, then arrive
// after the propagation delay.
func TestModelSerialization(t *testing.T) {
	m := newModel(params(100e6, 5*time.Millisecond, 1<<20), 1, 0)
	for k := 0; k < 10; k++ {
		arr, wait, v := m.offer(0, 1500)
		if v != pass {
			t.Fatalf("packet %d dropped", k)
		}
		ser := 120e3 // 1500 B at 100 Mbit/s = 120 us
		if want := float64(k+1)*ser + 5e6; math.Abs(arr-want) > 1e-3 {
			t.Fatalf("packet %d arrives at %v ns, want %v", k, arr, want)
		}
		if want := float64(k) * ser; math.Abs(wait-want) > 1e-3 {
			t.Fatalf("packet %d waited %v ns, want %v", k, wait, want)
		}
	}
	// Once idle, a packet goes straight through.
	arr, wait, _ := m.offer(1e9, 1000)
	if arr != 1e9+80e3+5e6 || wait != 0 {
		t.Fatalf("idle link: arrive %v wait %v", arr, wait)
	}
}

// A drop-tail byte queue holds what fits and drops the rest; it drains at
// the link bandwidth.
func TestModelQueueOverflow(t *testing.T) {
	m := newModel(params(8e6, 0, 15000), 1, 0) // 1 byte/us, 10 packets
	var acc, drop int
	for k := 0; k < 25; k++ {
		if _, _, v := m.offer(0, 1500); v == pass {
			acc++
		} else if v == dropQueue {
			drop++
		}
	}
	if acc != 10 || drop != 15 {
		t.Fatalf("accepted %d dropped %d, want 10 and 15", acc, drop)
	}
	if b := m.backlog(0); b != 15000 {
		t.Fatalf("backlog %v, want 15000", b)
	}
	// After 4.5 ms (4500 bytes drained) exactly 3 more packets fit.
	acc = 0
	for k := 0; k < 5; k++ {
		if _, _, v := m.offer(4.5e6, 1500); v == pass {
			acc++
		}
	}
	if acc != 3 {
		t.Fatalf("after draining accepted %d, want 3", acc)
	}
	if b := m.backlog(30e6); b != 0 {
		t.Fatalf("backlog of an idle link %v", b)
	}
	// Unlimited bandwidth never queues.
	u := newModel(params(0, time.Millisecond, 1500), 1, 0)
	for k := 0; k < 100; k++ {
		if arr, _, v := u.offer(0, 1500); v != pass || arr != 1e6 {
			t.Fatalf("unlimited link: %v %v", arr, v)
		}
	}
}

// Offered above capacity for a long time, the link carries its bandwidth.
func TestModelThroughput(t *testing.T) {
	m := newModel(params(10e6, 0, 64<<10), 1, 0)
	var sent, last float64
	for now := 0.0; now < 1e9; now += 600e3 / 1.5 { // 1500 B every 400 us = 30 Mbit/s
		if arr, _, v := m.offer(now, 1500); v == pass {
			sent += 1500
			last = arr
		}
	}
	rate := sent * 8 / (last / 1e9)
	if math.Abs(rate-10e6)/10e6 > 0.01 {
		t.Fatalf("carried %v bit/s, want 10 Mbit/s within 1%%", rate)
	}
}

// Loss is Bernoulli per packet: the count stays within 5 standard
// deviations, and the same seed gives the same drops.
func TestModelLossStatistics(t *testing.T) {
	for _, p := range []float64{0.001, 0.01, 0.1, 0.5} {
		lp := params(0, 0, 0)
		lp.Loss = topology.Fraction(p)
		m1, m2, m3 := newModel(lp, 7, 3), newModel(lp, 7, 3), newModel(lp, 8, 3)
		const n = 200000
		var lost, same, diff int
		for k := 0; k < n; k++ {
			_, _, v1 := m1.offer(float64(k), 100)
			_, _, v2 := m2.offer(float64(k), 100)
			_, _, v3 := m3.offer(float64(k), 100)
			if v1 == dropLoss {
				lost++
			}
			if v1 == v2 {
				same++
			}
			if v1 != v3 {
				diff++
			}
		}
		sd := math.Sqrt(n * p * (1 - p))
		if math.Abs(float64(lost)-n*p) > 5*sd {
			t.Errorf("loss %v: lost %d of %d, want %v +- %v", p, lost, n, n*p, 5*sd)
		}
		if same != n {
			t.Errorf("loss %v: same seed differs on %d packets", p, n-same)
		}
		if diff == 0 {
			t.Errorf("loss %v: another seed gives identical drops", p)
		}
	}
}

// Jitter spreads arrivals within +-jitter of the delay; without reorder
// arrivals never go backwards, with it they do.
func TestModelJitter(t *testing.T) {
	lp := params(0, 10*time.Millisecond, 0)
	lp.Jitter = topology.Duration(2 * time.Millisecond)
	m := newModel(lp, 1, 0)
	prev := 0.0
	for k := 0; k < 10000; k++ { // dense: FIFO clamping must hold
		now := float64(k) * 100e3
		arr, _, _ := m.offer(now, 100)
		if arr < prev || arr-now < 8e6 || arr-now > 12e6+100e3 {
			t.Fatalf("packet %d: arrival %v after %v, delay %v", k, arr, prev, arr-now)
		}
		prev = arr
	}
	// Sparse (gaps > 2 x jitter): delays uniform in [8, 12] ms, mean 10.
	lo, hi, sum := math.Inf(1), 0.0, 0.0
	const n = 10000
	for k := 0; k < n; k++ {
		now := 1e9 + float64(k)*5e6
		arr, _, _ := m.offer(now, 100)
		d := arr - now
		lo, hi, sum = math.Min(lo, d), math.Max(hi, d), sum+d
	}
	mean := sum / n
	// Uniform on 4 ms: sd 1.15 ms, so the mean of 10000 is within 60 us.
	if lo < 8e6 || lo > 8.05e6 || hi > 12e6 || hi < 11.95e6 || math.Abs(mean-10e6) > 60e3 {
		t.Fatalf("sparse delays span [%v, %v] mean %v ns, want [8e6, 12e6] mean 10e6", lo, hi, mean)
	}
	lp.Reorder = true
	r := newModel(lp, 1, 0)
	prev = 0
	reordered := 0
	for k := 0; k < 1000; k++ {
		arr, _, _ := r.offer(float64(k)*100e3, 100)
		if arr < prev {
			reordered++
		}
		prev = arr
		if d := arr - float64(k)*100e3; d < 8e6 || d > 12e6 {
			t.Fatalf("delay %v outside +-jitter", d)
		}
	}
	if reordered == 0 {
		t.Fatalf("reorder: true never reordered")
	}
}

func TestRingOrder(t *testing.T) {
	var r ring
	for _, at := range []int64{5, 3, 9, 1, 7, 7, 2} {
		r.push(packet{at: at})
	}
	prev := int64(-1)
	for r.len() > 0 {
		p := r.pop()
		if p.at < prev {
			t.Fatalf("ring out of order: %d after %d", p.at, prev)
		}
		prev = p.at
	}
	for i := 0; i < 100; i++ { // wrap-around and growth
		r.push(packet{at: int64(i)})
		if i%3 == 0 {
			r.pop()
		}
	}
	if r.len() != 66 {
		t.Fatalf("len %d", r.len())
	}
}

// Lead shortens the propagation delay, never the serialization.
func TestModelLead(t *testing.T) {
	m := newModel(params(8e6, time.Millisecond, 0), 1, 0) // 1 byte/us
	m.lead = 300e3
	if arr, _, _ := m.offer(0, 1000); arr != 1000e3+700e3 {
		t.Fatalf("arrival %v, want 1.7e6", arr)
	}
	m.lead = 5e6 // more than the delay: clamp at departure
	if arr, _, _ := m.offer(10e6, 1000); arr != 11e6 {
		t.Fatalf("arrival %v, want departure 11e6", arr)
	}
}

// An offer stamped earlier than the previous one is taken at the previous
// one's time, so the backlog never counts the gap between them as bytes.
func TestModelOffersInTimeOrder(t *testing.T) {
	m := newModel(params(8e6, 0, 3000), 1, 0) // 1 byte/us, two packets
	if _, _, v := m.offer(10e6, 1500); v != pass {
		t.Fatal("first packet dropped")
	}
	// Stamped 5 ms earlier: taken at 10 ms, behind one packet: fits.
	arr, wait, v := m.offer(5e6, 1500)
	if v != pass || wait != 1500e3 || arr != 13e6 {
		t.Fatalf("late-stamped offer: %v wait %v arrive %v", v, wait, arr)
	}
}
