package live

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/zeebo/xxh3"
	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/mem/internal/pagetest"
	"github.com/vmux/vmux/rt/reexec"
)

const targetRole = "live-test-target"

// The test target maps a region of known pages (zero, duplicated, similar,
// compressible, random: one of each in turn), then obeys stdin:
// "check" prints the region's checksum, "write N" changes page N, "exit".
func init() {
	reexec.Register(targetRole, func(args []string) int {
		n, _ := strconv.Atoi(args[0])
		mem, err := unix.Mmap(-1, 0, n*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			fmt.Println("mmap:", err)
			return 1
		}
		fillPattern(mem, n)
		out := bufio.NewWriter(os.Stdout)
		fmt.Fprintf(out, "ready %d %x\n", uintptr(unsafe.Pointer(&mem[0])), xxh3.Hash(mem))
		out.Flush()
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch f[0] {
			case "check":
				fmt.Fprintf(out, "sum %x\n", xxh3.Hash(mem))
			case "write":
				i, _ := strconv.Atoi(f[1])
				mem[i*4096+17]++
				fmt.Fprintf(out, "ok\n")
			case "touch":
				touchTimed(out, mem, n)
			case "uffdbase":
				k, _ := strconv.Atoi(f[1])
				if err := uffdRoundTrip(out, k); err != nil {
					fmt.Fprintf(out, "error %v\n", err)
				}
			case "exit":
				return 0
			}
			out.Flush()
		}
		return 0
	})
}

func fillPattern(mem []byte, n int) {
	r := rand.New(rand.NewPCG(7, 7))
	base := pagetest.MemoryLike(r)
	for i := 0; i < n; i++ {
		p := mem[i*4096 : (i+1)*4096]
		switch i % 5 {
		case 0: // zero
		case 1:
			copy(p, base)
		case 2:
			copy(p, base)
			p[r.IntN(4096)] ^= 0x5a
			p[r.IntN(4096)] ^= 0x33
		case 3:
			copy(p, pagetest.MemoryLike(r))
		case 4:
			copy(p, pagetest.Random(r))
		}
	}
}

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

type proc struct {
	t     testing.TB
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	addr  uint64
	sum   string
	pages int
}

func startTarget(t testing.TB, pages int) *proc {
	t.Helper()
	cmd := reexec.Command("", targetRole, strconv.Itoa(pages))
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, in: in, out: bufio.NewReader(out), pages: pages}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	var a uint64
	if _, err := fmt.Sscanf(p.line(), "ready %d %s", &a, &p.sum); err != nil {
		t.Fatalf("target: %v", err)
	}
	p.addr = a
	return p
}

func (p *proc) line() string {
	p.t.Helper()
	type res struct {
		s   string
		err error
	}
	c := make(chan res, 1)
	go func() { s, err := p.out.ReadString('\n'); c <- res{s, err} }()
	select {
	case r := <-c:
		if r.err != nil {
			p.t.Fatalf("read target: %v", r.err)
		}
		return strings.TrimSpace(r.s)
	case <-time.After(60 * time.Second):
		p.t.Fatalf("target did not answer in 60 s")
	}
	return ""
}

func (p *proc) check() {
	p.t.Helper()
	fmt.Fprintln(p.in, "check")
	if got := p.line(); got != "sum "+p.sum {
		p.t.Fatalf("target memory changed: %s, want sum %s", got, p.sum)
	}
}

func testEngine(t testing.TB, dir string) *Engine {
	t.Helper()
	e, err := New(Config{Dir: dir, Cold: time.Second, Interval: 250 * time.Millisecond, CPU: 1,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// waitHeld waits until at least n of the pages the target wrote in its
// region (every page but the untouched zero ones) are out of the process:
// not present in its page map, so held by the engine. The engine's own
// count is not used: it holds pages of the whole process, and the target
// has others (under -race, ~2,700 resident zero pages and more of the race
// detector's shadow memory) that it may take before the region's.
func waitHeld(t testing.TB, e *Engine, p *proc, n int) ProcessStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	out := 0
	for time.Now().Before(deadline) {
		out = p.regionOut()
		if out >= n {
			for _, ps := range e.Status().Processes {
				if ps.Pid == p.cmd.Process.Pid {
					return ps
				}
			}
			t.Fatalf("process %d not in the engine's status", p.cmd.Process.Pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d of the region's written pages out of process %d after 30 s, want %d: %+v", out, p.cmd.Process.Pid, n, e.Status().Processes)
	return ProcessStatus{}
}

// regionOut counts the region's written pages (i%5 != 0, see fillPattern)
// that are not present in the target's page map.
func (p *proc) regionOut() int {
	p.t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 8*p.pages)
	if _, err := f.ReadAt(b, int64(p.addr/4096*8)); err != nil {
		p.t.Fatalf("read pagemap: %v", err)
	}
	out := 0
	for i := 0; i < p.pages; i++ {
		const present = 1 << 63
		if i%5 != 0 && binary.LittleEndian.Uint64(b[i*8:])&present == 0 {
			out++
		}
	}
	return out
}

func TestEvictServeStop(t *testing.T) {
	testutil.MustRoot(t)
	dir := filepath.Join(t.TempDir(), "live")
	const pages = 5000
	p := startTarget(t, pages)
	e := testEngine(t, dir)
	if err := e.Attach(p.cmd.Process.Pid, ""); err != nil {
		e.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", p.cmd.Process.Pid))
			for _, l := range strings.Split(string(b), "\n") {
				var lo, hi uint64
				fmt.Sscanf(l, "%x-%x", &lo, &hi)
				if lo <= p.addr && p.addr < hi || (lo >= p.addr && lo < p.addr+pages*4096) {
					t.Logf("region %#x: %s", p.addr, l)
				}
			}
			sm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", p.cmd.Process.Pid))
			i := strings.Index(string(sm), fmt.Sprintf("%x-", p.addr&^0xfff))
			if i >= 0 {
				t.Logf("%s", string(sm)[i:min(len(sm), i+1500)])
			}
		}
	})
	// 4/5 of the region is written; 3/5 of it stores usefully (shared,
	// patched, compressed) and random pages may stay: wait for half of it
	const held = pages / 2
	ps := waitHeld(t, e, p, held)
	st := e.Status()
	t.Logf("held %d pages (%+v), rss %d -> %d, store %d, net saved %d", ps.PagesHeld, ps.Held, ps.RSSBefore, ps.RSSNow, st.StoreBytes, st.NetSavedBytes)
	if ps.RSSNow >= ps.RSSBefore-int64(held*4096)/2 {
		t.Errorf("RSS did not drop: %d -> %d with %d pages held", ps.RSSBefore, ps.RSSNow, ps.PagesHeld)
	}
	if ps.Held.Shared == 0 || ps.Held.Patched == 0 || ps.Held.Compressed == 0 || ps.Held.Zero == 0 {
		t.Errorf("not every mechanism used: %+v", ps.Held)
	}
	// every byte comes back on fault
	p.check()
	st = e.Status()
	if st.Faults == 0 {
		t.Errorf("no faults served after reading the held pages")
	}
	t.Logf("faults %d p50 %.1f us p99 %.1f us by %v", st.Faults, st.FaultP50us, st.FaultP99us, st.FaultsBy)
	// evicted again, then a write to one page changes it alone
	waitHeld(t, e, p, held)
	fmt.Fprintln(p.in, "write 6")
	p.line()
	fmt.Fprintln(p.in, "check")
	if got := p.line(); got == "sum "+p.sum {
		t.Fatalf("write not seen")
	}
	fmt.Fprintln(p.in, "write 6") // back? no: it increments; undo by 255 more
	p.line()
	for i := 0; i < 254; i++ {
		fmt.Fprintln(p.in, "write 6")
		p.line()
	}
	p.check()
	// stop gives everything back
	waitHeld(t, e, p, held)
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	p.check()
	if _, err := os.Stat(filepath.Join(dir, journalFile)); !os.IsNotExist(err) {
		t.Errorf("journal left after stop: %v", err)
	}
	maps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", p.cmd.Process.Pid))
	if strings.Contains(string(maps), "userfaultfd") {
		t.Errorf("uffd left in the target")
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	for _, f := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.cmd.Process.Pid, f.Name())); l == "anon_inode:[userfaultfd]" {
			t.Errorf("the target still has a userfaultfd after stop (fd %s)", f.Name())
		}
	}
}
