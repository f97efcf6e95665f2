//go:build linux

package mem

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// This file is the tests' own small reader of live process memory (through
// /proc/PID/mem) and starter of real processes; the product's live source
// is mem/source.

// proc is a process started by a test, stopped by its Cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
}

// pyScript builds interpreter state of varying size: dicts, strings, lists.
const pyScript = `
import sys, json, collections, re, random
random.seed(int(sys.argv[1]))
n = int(sys.argv[2])
data = [{"id": i, "name": "user%d" % i, "tags": [random.choice("abcdef") for _ in range(3)]} for i in range(n)]
index = collections.defaultdict(list)
for d in data:
    index[d["tags"][0]].append(d["id"])
blob = json.dumps(data[: n // 4])
print("ready", flush=True)
sys.stdin.read()
`

const perlScript = `
my ($seed, $n) = @ARGV; srand($seed);
my %h; for my $i (1..$n) { $h{"key$i"} = join(",", map { int(rand(1000)) } 1..4); }
my @a = map { "value$_" x 3 } 1..$n;
$| = 1; print "ready\n"; <STDIN>;
`

// startProc starts one process of kind ("python3", "perl", "redis") with
// instance number i and waits until it has built its state.
func startProc(t testing.TB, kind string, i, size int) *proc {
	t.Helper()
	var cmd *exec.Cmd
	var cli string // redis-cli, for redis
	dir := t.TempDir()
	switch kind {
	case "python3":
		cmd = exec.Command(testutil.MustHaveCommand(t, "python3"), "-c", pyScript, strconv.Itoa(i), strconv.Itoa(size))
	case "perl":
		cmd = exec.Command(testutil.MustHaveCommand(t, "perl"), "-e", perlScript, strconv.Itoa(i), strconv.Itoa(size))
	case "redis":
		sock := filepath.Join(dir, "redis.sock")
		cli = testutil.MustHaveCommand(t, "redis-cli")
		cmd = exec.Command(testutil.MustHaveCommand(t, "redis-server"), "--port", "0", "--unixsocket", sock,
			"--save", "", "--appendonly", "no", "--enable-debug-command", "yes", "--dir", dir, "--loglevel", "warning")
	default:
		t.Fatalf("unknown process kind %q", kind)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", kind, err)
	}
	p := &proc{name: fmt.Sprintf("%s-%d", kind, i), cmd: cmd}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/mem", cmd.Process.Pid)); err == nil {
			t.Errorf("process %s (pid %d) survived cleanup", p.name, cmd.Process.Pid)
		}
	})
	ready := make(chan error, 1)
	go func() {
		if kind == "redis" {
			ready <- redisPopulate(cli, dir, size, i)
			_, _ = io.Copy(io.Discard, stdout)
			return
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("start %s: %v", p.name, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("start %s: not ready after 60 s", p.name)
	}
	return p
}

// redisPopulate waits for the socket and fills the server with keys.
func redisPopulate(cli, dir string, n, seed int) error {
	sock := filepath.Join(dir, "redis.sock")
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			return errors.New("redis socket did not appear")
		}
	}
	out, err := exec.Command(cli, "-s", sock, "DEBUG", "POPULATE", strconv.Itoa(n), fmt.Sprintf("k%d", seed), "64").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("OK")) {
		return fmt.Errorf("redis-cli DEBUG POPULATE: %v: %s", err, out)
	}
	return nil
}

// readProcPages calls fn with every readable page of the anonymous and
// private writable mappings of pid; it returns the number of pages skipped
// because they could not be read.
func readProcPages(pid int, fn func(page []byte)) (skipped int64, err error) {
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return 0, fmt.Errorf("read maps: %w", err)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return 0, fmt.Errorf("open mem: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for _, line := range strings.Split(strings.TrimSpace(string(maps)), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 5 {
			continue
		}
		perms, inode := fs[1], fs[4]
		path := ""
		if len(fs) >= 6 {
			path = fs[5]
		}
		if perms[0] != 'r' || strings.HasPrefix(path, "[v") {
			continue
		}
		if !(inode == "0" || (perms[1] == 'w' && perms[3] == 'p')) {
			continue
		}
		lo, hi, ok := strings.Cut(fs[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		for a := start; a < end; {
			n := min(uint64(len(buf)), end-a)
			got, err := f.ReadAt(buf[:n], int64(a))
			got &^= PageSize - 1
			for o := 0; o < got; o += PageSize {
				fn(buf[o : o+PageSize])
			}
			if err != nil && got < int(n) {
				// unreadable page (e.g. a guard page): skip it
				a += uint64(got) + PageSize
				skipped++
				continue
			}
			a += n
		}
	}
	return skipped, nil
}

// captured is real process memory kept for a test.
type captured struct {
	names []string
	pages [][][]byte
}

func captureProcs(t testing.TB, procs []*proc) *captured {
	t.Helper()
	c := &captured{}
	for _, p := range procs {
		var pages [][]byte
		if _, err := readProcPages(p.cmd.Process.Pid, func(pg []byte) {
			pages = append(pages, bytes.Clone(pg))
		}); err != nil {
			t.Fatalf("read memory of %s: %v", p.name, err)
		}
		if len(pages) == 0 {
			t.Fatalf("no pages read from %s", p.name)
		}
		c.names = append(c.names, p.name)
		c.pages = append(c.pages, pages)
	}
	return c
}

// corpus turns captured memory into a test corpus, with domains from dom.
func (c *captured) corpus(dom func(i int) Domain) *corpus {
	out := &corpus{names: c.names, pages: c.pages}
	for i := range c.names {
		out.domains = append(out.domains, dom(i))
	}
	return out
}

// sample keeps, per source, its first n non-zero pages and the zero pages
// among them.
func (c *captured) sample(n int) {
	for i, ps := range c.pages {
		k := 0
		for j, p := range ps {
			if !bytes.Equal(p, make([]byte, PageSize)) {
				k++
			}
			if k > n {
				c.pages[i] = ps[:j]
				break
			}
		}
	}
}
