package netem

import (
	"sort"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/topology"
	"github.com/vmux/vmux/rt/vclock"
)

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const benchSpec = `
name: bench
nodes: {a: {}, b: {}}
switches: [s]
links:
  - {ends: [a, s], queue: 16MiB}
  - {ends: [s, b], queue: 16MiB}
`

// pump pushes b.N packets of size bytes from a to b through an emulator
// over n (or straight through one fake pair when n is nil: the baseline)
// with at most window in flight, and reports packets/s, Gbit/s and the
// CPU cores the whole process used meanwhile.
func pump(b *testing.B, n *topology.Network, opts Options, size, window int) {
	var src, dst *Fake
	var pa, pb []byte
	if n == nil {
		src, dst = NewFakePair(window * 2)
		pa = make([]byte, size)
	} else {
		e, nodes := fakeNet(b, n, opts)
		src, dst = nodes["a"], nodes["b"]
		pa = ipv4(addr(b, e, "a"), addr(b, e, "b"), size, 0)
	}
	pb = make([]byte, 65536)
	tokens := make(chan struct{}, window)
	for i := 0; i < window; i++ {
		tokens <- struct{}{}
	}
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			if _, err := dst.Read(pb); err != nil {
				return
			}
			got.Add(1)
			tokens <- struct{}{}
		}
	}()
	b.SetBytes(int64(size))
	b.ResetTimer()
	c0, t0 := cpuTime(), time.Now()
	for i := 0; i < b.N; i++ {
		<-tokens
		src.Write(pa)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.Fatalf("only %d of %d packets arrived", got.Load(), b.N)
	}
	wall, cpu := time.Since(t0), cpuTime()-c0
	b.StopTimer()
	pps := float64(b.N) / wall.Seconds()
	b.ReportMetric(pps, "pkt/s")
	b.ReportMetric(pps*float64(size)*8/1e9, "Gbit/s")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
	b.ReportMetric(pps/(cpu.Seconds()/wall.Seconds()), "pkt/s/core")
}

// BenchmarkCapacityFake: emulator forwarding capacity over two unlimited,
// zero-delay hops, side by side with the bare fake pair (the baseline).
func BenchmarkCapacityFake(b *testing.B) {
	for _, size := range []int{64, 1500} {
		name := map[int]string{64: "64B", 1500: "1500B"}[size]
		b.Run("baseline-fakepair/"+name, func(b *testing.B) { pump(b, nil, Options{}, size, 256) })
		b.Run("emulator/"+name, func(b *testing.B) { pump(b, compile(b, benchSpec), Options{}, size, 256) })
		b.Run("emulator-nice-10/"+name, func(b *testing.B) { pump(b, compile(b, benchSpec), Options{Nice: -10}, size, 256) })
		b.Run("emulator-virtual/"+name, func(b *testing.B) { pump(b, compile(b, benchSpec), virtualAt1(b), size, 256) })
	}
}

// pingPong measures round trips of one packet at a time from a to b and
// back; it reports the median and p99 one-way time (RTT / 2).
func pingPong(b *testing.B, n *topology.Network, opts Options) {
	var a1, b1 *Fake
	var pkt, back []byte
	if n == nil {
		a1, b1 = NewFakePair(4)
		pkt, back = make([]byte, 100), make([]byte, 100)
	} else {
		e, nodes := fakeNet(b, n, opts)
		a1, b1 = nodes["a"], nodes["b"]
		aa, bb := addr(b, e, "a"), addr(b, e, "b")
		pkt, back = ipv4(aa, bb, 100, 0), ipv4(bb, aa, 100, 0)
	}
	buf := make([]byte, 2048)
	go func() {
		for {
			if _, err := b1.Read(buf); err != nil {
				return
			}
			b1.Write(back)
		}
	}()
	defer b1.Close()
	rbuf := make([]byte, 2048)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		a1.Write(pkt)
		if _, err := a1.Read(rbuf); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0)/2)
		time.Sleep(200 * time.Microsecond) // idle between packets, as ping is
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "us-median")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "us-p99")
}

// BenchmarkLatencyFake: one-way time at zero configured latency, with the
// bare fake pair as the baseline (added latency = the difference).
func BenchmarkLatencyFake(b *testing.B) {
	b.Run("baseline-fakepair", func(b *testing.B) { pingPong(b, nil, Options{}) })
	b.Run("emulator", func(b *testing.B) { pingPong(b, compile(b, benchSpec), Options{}) })
	b.Run("emulator-nice-10", func(b *testing.B) { pingPong(b, compile(b, benchSpec), Options{Nice: -10}) })
	b.Run("emulator-virtual", func(b *testing.B) { pingPong(b, compile(b, benchSpec), virtualAt1(b)) })
}

// virtualAt1 is the emulator's virtual-time mode (a dilated experiment's)
// on a clock at k = 1, so that its figures compare with real time's.
func virtualAt1(b *testing.B) Options {
	_, v := vclockAt(b, vclock.TDF{Num: 1, Den: 1})
	return Options{Clock: v}
}
