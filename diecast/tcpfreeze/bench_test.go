package tcpfreeze

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// BenchmarkFreeze: the cost a pause adds, Freeze then Release of n
// sockets with data in flight (held by a paused forwarder), next to the
// baselines: a node with no TCP socket (sockstat says so: no table is
// read) and one with 64 idle connections (its table is read, nothing is
// held). Metrics: freeze-ms and release-ms per pause, us/socket for both.
func BenchmarkFreeze(b *testing.B) {
	testutil.MustRoot(b)
	for _, c := range []struct{ n, idle int }{{0, 0}, {0, 64}, {1, 0}, {16, 0}, {64, 0}, {256, 0}} {
		n := c.n
		b.Run(fmt.Sprintf("sockets=%d/idle=%d", n, c.idle), func(b *testing.B) {
			p := newPair(b, time.Millisecond)
			ln := p.listen()
			var conns []*netTCP
			for range n {
				c, s := p.dial(ln)
				drain(s)
				conns = append(conns, &netTCP{c})
			}
			for range c.idle {
				p.dial(ln)
			}
			p.pause()
			defer p.resume()
			for _, c := range conns {
				c.c.Write(make([]byte, 1000))
			}
			time.Sleep(20 * time.Millisecond)
			var freeze, release time.Duration
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				f, err := Freeze([]Target{p.target(0)}, Options{})
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if st := f.Stats(); st.Held != n {
					b.Fatalf("held %+v, want %d", st, n)
				}
				if err := f.Release(); err != nil {
					b.Fatal(err)
				}
				freeze += t1.Sub(t0)
				release += time.Since(t1)
			}
			b.StopTimer()
			b.ReportMetric(float64(freeze.Microseconds())/1e3/float64(b.N), "freeze-ms")
			b.ReportMetric(float64(release.Microseconds())/1e3/float64(b.N), "release-ms")
			if n > 0 {
				b.ReportMetric(float64((freeze+release).Microseconds())/float64(b.N*n), "us/socket")
			}
		})
	}
}
