package netd

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/rt/reexec"
)

const pair = `name: %s
nodes: {a: {}, b: {}}
links: [{ends: [a, b], bandwidth: 100Mbit, latency: 1ms}]
`

// `(umask 000; vmux net up demo.yaml)` gave srwxrwxrwx exec sockets: they
// are 0600 in a 0700 directory whatever the umask.
func TestUpSocketsPrivateUnderUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	st := up(t, pair)
	for _, n := range st.Nodes {
		fi, err := os.Lstat(n.Socket)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("node %s socket %s mode %v, want 0600", n.Name, n.Socket, fi.Mode())
		}
		di, err := os.Lstat(filepath.Dir(n.Socket))
		if err != nil {
			t.Fatal(err)
		}
		if !di.IsDir() || di.Mode().Perm() != 0o700 {
			t.Errorf("socket directory mode %v, want 0700", di.Mode())
		}
	}
}

// A spec with a long latency and no bandwidth limit plus a UDP blast from
// one node grew the daemon from 11 MB to 2.27 GB in 6 s: the delay line
// held every packet for the whole latency. Now the link holds at most
// netem.DefaultUnlimitedInFlight, the emulator netem.DefaultMaxInFlight,
// and the daemon runs in a memory-limited cgroup of its own.
func TestDaemonMemoryBoundedUnderBlast(t *testing.T) {
	st := upFast(t, `name: %s
nodes: {a: {}, b: {}}
links: [{ends: [a, b], latency: 10s}]
`)
	b, _ := st.Node("b")
	dst := strings.Split(b.Address, "/")[0] + ":9"
	out, errs, es := execEnv(t, st, "a", []string{reexec.Env + "=udp-blast"}, reexec.Self, dst, "1400", "4s")
	if es.Code != 0 {
		t.Fatalf("blast: %+v %s", es, errs)
	}
	hwm := procStatusKB(t, st.Daemon.Pid, "VmHWM")
	t.Logf("blast sent %s datagrams; daemon peak RSS %d MB", strings.TrimSpace(out), hwm>>10)
	if hwm > 300<<10 {
		t.Errorf("daemon peak RSS %d MB after the blast, want < 300 MB", hwm>>10)
	}
	// The daemon is in its own memory-limited cgroup.
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", st.Daemon.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := "/" + filepath.Join("vmux", st.Name, DaemonCgroup)
	var memDir string
	for _, l := range strings.Split(string(cg), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && (f[1] == "memory" || (f[0] == "0" && f[1] == "")) && strings.HasSuffix(f[2], want) {
			memDir = f[2]
		}
	}
	if memDir == "" {
		t.Fatalf("daemon cgroups:\n%s\nwant memory in %s", cg, want)
	}
	lim, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", memDir, "memory.limit_in_bytes"))
	if err == nil && strings.TrimSpace(string(lim)) != strconv.Itoa(DaemonMemory) {
		t.Errorf("daemon memory limit %s, want %d", lim, DaemonMemory)
	}
	// The drops are counted where status shows them.
	deadline := time.Now().Add(8 * time.Second)
	for {
		s, err := GetStatus(st.Name)
		if err != nil {
			t.Fatal(err)
		}
		var drops uint64
		if s.Links != nil {
			for _, l := range s.Links.Links {
				drops += l.InFlightDrops + l.MemoryDrops
			}
		}
		if drops > 0 {
			t.Logf("in-flight drops %d, emulator memory %d MB", drops, s.Links.Memory>>20)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no in-flight drops in net status after the blast")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// procStatusKB reads a "kB" field of /proc/PID/status.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// execEnv is execIn with extra environment variables.
func execEnv(t *testing.T, st *State, n string, env []string, argv ...string) (string, string, node.ExitStatus) {
	t.Helper()
	ns, err := st.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "out"))
	errf, _ := os.Create(filepath.Join(dir, "err"))
	in, _ := os.Open(os.DevNull)
	defer out.Close()
	defer errf.Close()
	defer in.Close()
	es, err := node.Exec(n, ns.Socket, node.ExecOptions{Argv: argv, Env: append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...),
		Stdin: in, Stdout: out, Stderr: errf})
	if err != nil {
		t.Fatalf("exec %q in %s: %v", argv, n, err)
	}
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return string(o), string(e), es
}
