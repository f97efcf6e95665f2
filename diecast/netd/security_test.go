package netd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/internal/testutil"
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
	var limitFile string // the limit of the daemon's memory cgroup, v1 or v2
	for _, l := range strings.Split(string(cg), "\n") {
		f := strings.SplitN(l, ":", 3)
		switch {
		case len(f) != 3 || !strings.HasSuffix(f[2], want):
		case f[1] == "memory":
			limitFile = filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes")
		case f[0] == "0" && f[1] == "":
			limitFile = filepath.Join("/sys/fs/cgroup", f[2], "memory.max")
		}
	}
	if limitFile == "" {
		t.Fatalf("daemon cgroups:\n%s\nwant memory in %s", cg, want)
	}
	if lim, err := os.ReadFile(limitFile); err != nil || strings.TrimSpace(string(lim)) != strconv.Itoa(DaemonMemory) {
		t.Errorf("daemon memory limit %q (%v), want %d", lim, err, DaemonMemory)
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

// Normal workloads run in sandboxed nodes: iperf3 server and client, ping,
// redis-server and redis-cli, nginx and curl, across the emulated link.
func TestWorkloadsInSandbox(t *testing.T) {
	for _, c := range []string{"iperf3", "ping", "redis-server", "redis-cli", "nginx", "curl"} {
		testutil.MustHaveCommand(t, c)
	}
	st := up(t, `name: %s
nodes: {srv: {memory: 512Mi}, cli: {memory: 512Mi}}
links: [{ends: [srv, cli], bandwidth: 200Mbit, latency: 1ms}]
`)
	must := func(n string, argv ...string) string { t.Helper(); return mustExec(t, st, n, argv...) }
	// eventually retries argv in n until it succeeds (a server starting).
	eventually := func(n string, argv ...string) string {
		t.Helper()
		return eventuallyExec(t, st, 10*time.Second, n, argv...)
	}
	t.Run("ping", func(t *testing.T) { must("cli", "ping", "-c", "2", "-i", "0.2", "-W", "2", "srv") })
	t.Run("iperf3", func(t *testing.T) {
		must("srv", "iperf3", "-s", "-D", "-1")
		out := eventually("cli", "iperf3", "-c", "srv", "-t", "1", "-J")
		var r struct {
			End struct {
				SumReceived struct {
					Bps float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.End.SumReceived.Bps < 50e6 {
			t.Errorf("iperf3 through the sandboxes: %.0f bit/s (%v)", r.End.SumReceived.Bps, err)
		}
	})
	t.Run("redis", func(t *testing.T) {
		must("srv", "redis-server", "--port", "6379", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "yes")
		if out := eventually("cli", "redis-cli", "-h", "srv", "ping"); strings.TrimSpace(out) != "PONG" {
			t.Errorf("redis-cli ping: %q", out)
		}
		must("cli", "redis-cli", "-h", "srv", "set", "k", "v")
		if out := must("cli", "redis-cli", "-h", "srv", "get", "k"); strings.TrimSpace(out) != "v" {
			t.Errorf("redis get: %q", out)
		}
	})
	t.Run("nginx", func(t *testing.T) {
		// Its configuration and temporary files in the node's scratch /tmp
		// (the host's /etc/nginx is read-only and its logs not ours).
		must("srv", "sh", "-c", `mkdir -p /tmp/nginx && cat > /tmp/nginx/nginx.conf <<'CONF'
pid /tmp/nginx/nginx.pid; error_log stderr;
events { worker_connections 64; }
http { access_log off; server { listen 80; location / { return 200 "hello from nginx\n"; } } }
CONF
exec nginx -e stderr -p /tmp/nginx -c /tmp/nginx/nginx.conf`)
		if out := eventually("cli", "curl", "-sf", "http://srv/"); out != "hello from nginx\n" {
			t.Errorf("curl: %q", out)
		}
	})
}

// From inside a node, /run/vmux and every other experiment are invisible:
// before, a node reached another experiment's exec socket through
// /run/vmux, and `vmux net down OTHER` run inside a node deleted that
// experiment's sockets (while `net status` there called live daemons dead,
// checking their pids in the node's pid namespace).
func TestNodeIsolation(t *testing.T) {
	other := upOther(t, pair)
	vmux := vmuxBinary(t)
	st := upWith(t, pair, UpOptions{Exe: vmux}) // the node's init is vmux: reexec.Self runs the CLI
	b, _ := other.Node("b")
	if _, _, es := execIn(t, st, "a", "ls", "/run/vmux"); es.Code == 0 {
		t.Error("/run/vmux is visible in a node")
	}
	if _, _, es := execIn(t, st, "a", "test", "-S", b.Socket); es.Code == 0 {
		t.Errorf("another experiment's exec socket %s is visible in a node", b.Socket)
	}
	out, errs, _ := execIn(t, st, "a", reexec.Self, "net", "status")
	if strings.Contains(out+errs, other.Name) || strings.Contains(out+errs, st.Name) {
		t.Errorf("vmux net status in a node sees experiments:\n%s%s", out, errs)
	}
	out, errs, es := execIn(t, st, "a", reexec.Self, "net", "down", other.Name)
	t.Logf("vmux net down %s in a node: %+v %s%s", other.Name, es, out, errs)
	for _, n := range other.Nodes {
		if fi, err := os.Lstat(n.Socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("after net down in a node: %s's socket %s: %v", n.Name, n.Socket, err)
		}
	}
	if out, _, es := execIn(t, other, "b", "hostname"); es.Code != 0 || strings.TrimSpace(out) != "b" {
		t.Errorf("the other experiment after net down in a node: %q %+v", out, es)
	}
	if s, err := GetStatus(other.Name); err != nil || !s.DaemonAlive {
		t.Errorf("the other experiment's status: %+v %v", s, err)
	}
}

// upOther is up for a second experiment of the same test (up names one
// after the test): its name ends in "-o".
func upOther(t *testing.T, specTmpl string) *State {
	t.Helper()
	testutil.MustRoot(t)
	name := fmt.Sprintf("t%d-o%d", os.Getpid()%100000, time.Now().UnixNano()%1e6)
	p := filepath.Join(t.TempDir(), "other.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(specTmpl, name)), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Up(p, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(name, 3*time.Second); err != nil {
			t.Errorf("down: %v", err)
		}
		checkGone(t, st)
	})
	return st
}

// A privileged node (the escape hatch) sees /run/vmux; there vmux net
// refuses to read pids of another pid namespace instead of calling a live
// daemon dead or killing strangers.
func TestPrivilegedNodeNetCommands(t *testing.T) {
	vmux := vmuxBinary(t)
	st := upWith(t, `name: %s
nodes: {a: {privileged: true}, b: {}}
links: [{ends: [a, b]}]
`, UpOptions{Exe: vmux})
	if _, _, es := execIn(t, st, "a", "ls", "/run/vmux/"+st.Name); es.Code != 0 {
		t.Fatalf("the privileged node does not see /run/vmux: %+v", es)
	}
	for _, argv := range [][]string{{"net", "status", st.Name}, {"net", "down", st.Name}} {
		out, errs, es := execIn(t, st, "a", append([]string{reexec.Self}, argv...)...)
		if es.Code == 0 || !strings.Contains(errs, "another pid namespace") {
			t.Errorf("vmux %q in a privileged node: %+v\n%s%s", argv, es, out, errs)
		}
	}
	if s, err := GetStatus(st.Name); err != nil || !s.DaemonAlive {
		t.Errorf("status from the host after that: %+v %v", s, err)
	}
	if _, _, es := execIn(t, st, "b", "true"); es.Code != 0 {
		t.Errorf("node b after that: %+v", es)
	}
}
