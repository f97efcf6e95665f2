package live

import (
	"bufio"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
)

// Fault service, seen from the faulting thread: the target times its own
// first read of every page of its region that is not resident (taken by
// the engine), by the page's kind in fillPattern; the plain userfaultfd
// round trip is timed the same way in the same process, served by a
// handler thread that does nothing but UFFDIO_COPY a ready page.
//
//	flock /work/test.lock go test -run '^$' -bench FaultService -benchtime 1x ./mem/live

// touchSink keeps the timed reads from being optimized away.
var touchSink byte

var patternKinds = [5]string{"zero", "shared", "patched", "compressed", "raw"}

// touchTimed reads one byte of every page of mem not resident, timing
// each, and prints "lat KIND N P50US P99US" per kind, then "done".
func touchTimed(out *bufio.Writer, mem []byte, n int) {
	vec := make([]byte, n)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		fmt.Fprintf(out, "error mincore: %v\n", e)
		return
	}
	var lat [5][]time.Duration
	var sink byte
	for i := 0; i < n; i++ {
		if vec[i]&1 != 0 {
			continue
		}
		t0 := time.Now()
		sink += *(*byte)(unsafe.Pointer(&mem[i*4096+100]))
		lat[i%5] = append(lat[i%5], time.Since(t0))
	}
	for k, l := range lat {
		p50, p99 := quantiles(l)
		fmt.Fprintf(out, "lat %s %d %.2f %.2f\n", patternKinds[k], len(l), p50, p99)
	}
	touchSink = sink // the reads must happen
	fmt.Fprintf(out, "done\n")
}

func quantiles(l []time.Duration) (p50, p99 float64) {
	if len(l) == 0 {
		return 0, 0
	}
	slices.Sort(l)
	us := func(q float64) float64 { return float64(l[int(q*float64(len(l)-1))]) / 1e3 }
	return us(0.5), us(0.99)
}

// uffdRoundTrip maps n pages registered MISSING with a userfaultfd of
// this process, served by one thread with UFFDIO_COPY, and times the first
// read of each from this thread: "base N P50US P99US".
func uffdRoundTrip(out *bufio.Writer, n int) error {
	// as the engine's serve loop: non-blocking, poll, read, copy
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK, 0, 0)
	if e != 0 {
		return e
	}
	u := linux.NewUffd(int(fd))
	defer u.Close()
	if _, err := u.API(0); err != nil {
		return err
	}
	mem, err := unix.Mmap(-1, 0, n*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	defer unix.Munmap(mem)
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
	if err := u.Register(base, uint64(len(mem)), linux.UffdRegisterMissing); err != nil {
		return err
	}
	done, stop := make(chan error, 1), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		page := make([]byte, 4096)
		for i := range page {
			page[i] = byte(i)
		}
		buf := make([]byte, 16*linux.UffdMsgSize)
		ready := make([]bool, 1)
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := linux.PollReadable([]int{int(fd)}, 100*time.Millisecond, ready); err != nil {
				done <- err
				return
			}
			got, err := u.ReadMsgs(buf)
			if err != nil {
				done <- err
				return
			}
			for off := 0; off+linux.UffdMsgSize <= got; off += linux.UffdMsgSize {
				m, err := linux.ParseUffdMsg(buf[off:])
				if err != nil || m.Event != linux.UffdEventPagefault {
					continue
				}
				if _, err := u.Copy(m.Address&^4095, page, 0); err != nil {
					done <- err
					return
				}
			}
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lat := make([]time.Duration, 0, n)
	var sink byte
	for i := 0; i < n; i++ {
		t0 := time.Now()
		sink += *(*byte)(unsafe.Pointer(&mem[i*4096+100]))
		lat = append(lat, time.Since(t0))
	}
	touchSink = sink // the reads must happen
	close(stop)
	if err := <-done; err != nil {
		return err
	}
	p50, p99 := quantiles(lat)
	fmt.Fprintf(out, "base %d %.2f %.2f\n", n, p50, p99)
	return nil
}

func (p *proc) uffdBase(n int) (p50, p99 float64) {
	fmt.Fprintf(p.in, "uffdbase %d\n", n)
	var got int
	if _, err := fmt.Sscanf(p.line(), "base %d %f %f", &got, &p50, &p99); err != nil || got != n {
		p.t.Fatalf("uffd round trip: %v", err)
	}
	return p50, p99
}

// BenchmarkFaultService: the rebuild fault's p50/p99 by mechanism against
// the plain uffd round trip, measured before and after in the same target.
func BenchmarkFaultService(b *testing.B) {
	testutil.MustRoot(b)
	const pages = 5 * 4000
	for i := 0; i < b.N; i++ {
		p := startTarget(b, pages)
		b0p50, b0p99 := p.uffdBase(pages / 5)
		dir := filepath.Join(b.TempDir(), "live")
		e, err := New(Config{Dir: dir, Cold: time.Second, Interval: 250 * time.Millisecond, CPU: 1})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Attach(p.cmd.Process.Pid, ""); err != nil {
			e.Stop()
			b.Fatal(err)
		}
		waitHeld(b, e, p, pages*3/5)
		fmt.Fprintln(p.in, "touch")
		got := map[string][3]float64{}
		for {
			l := p.line()
			if strings.HasPrefix(l, "done") {
				break
			}
			var kind string
			var n int
			var p50, p99 float64
			if _, err := fmt.Sscanf(l, "lat %s %d %f %f", &kind, &n, &p50, &p99); err != nil {
				b.Fatalf("target: %q", l)
			}
			got[kind] = [3]float64{float64(n), p50, p99}
		}
		st := e.Status()
		if err := e.Stop(); err != nil {
			b.Fatal(err)
		}
		p.check()
		b1p50, b1p99 := p.uffdBase(pages / 5)
		b.Logf("plain uffd round trip: p50 %.1f / %.1f us, p99 %.1f / %.1f us (before / after)", b0p50, b1p50, b0p99, b1p99)
		base := (b0p50 + b1p50) / 2
		for _, k := range patternKinds {
			g := got[k]
			es := st.FaultsBy[k]
			b.Logf("%-10s faults %5.0f  p50 %6.1f us (%.2fx plain)  p99 %6.1f us;  engine's own service time p50 %.1f us p99 %.1f us (%d faults)",
				k, g[0], g[1], g[1]/base, g[2], es.P50us, es.P99us, es.Count)
			if g[0] > 0 {
				b.ReportMetric(g[1], k+"-p50-us")
				b.ReportMetric(g[2], k+"-p99-us")
			}
		}
		b.ReportMetric(base, "uffd-p50-us")
		b.ReportMetric((b0p99+b1p99)/2, "uffd-p99-us")
		fmt.Fprintln(p.in, "exit")
	}
}

// TestFaultTiming checks what BenchmarkFaultService measures with: the
// plain uffd round trip serves every page (a lost fault would hang the
// target), and the timed touch finds every page of an engine-held region
// not resident and reads it back intact.
func TestFaultTiming(t *testing.T) {
	testutil.MustRoot(t)
	p := startTarget(t, 500)
	if p50, p99 := p.uffdBase(300); p50 <= 0 || p99 < p50 {
		t.Fatalf("uffd round trip p50 %.1f us p99 %.1f us", p50, p99)
	}
	e := testEngine(t, filepath.Join(t.TempDir(), "live"))
	if err := e.Attach(p.cmd.Process.Pid, ""); err != nil {
		e.Stop()
		t.Fatal(err)
	}
	defer e.Stop()
	waitHeld(t, e, p, 500*3/5)
	fmt.Fprintln(p.in, "touch")
	n := 0
	for {
		l := p.line()
		if strings.HasPrefix(l, "done") {
			break
		}
		var kind string
		var k int
		var p50, p99 float64
		if _, err := fmt.Sscanf(l, "lat %s %d %f %f", &kind, &k, &p50, &p99); err != nil {
			t.Fatalf("target: %q", l)
		}
		n += k
	}
	if n < 500*3/5 {
		t.Errorf("%d pages timed, want at least %d held ones", n, 500*3/5)
	}
	p.check()
}
