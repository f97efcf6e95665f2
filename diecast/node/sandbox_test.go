package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
)

// runEnv is run with extra environment variables.
func runEnv(t *testing.T, n *Node, env []string, argv ...string) (string, string, ExitStatus) {
	t.Helper()
	dir := t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "out"))
	errf, _ := os.Create(filepath.Join(dir, "err"))
	in, _ := os.Open(os.DevNull)
	defer out.Close()
	defer errf.Close()
	defer in.Close()
	st, err := Exec(n.Name(), n.cfg.Socket, ExecOptions{Argv: argv, Env: append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...),
		Stdin: in, Stdout: out, Stderr: errf})
	if err != nil {
		t.Fatalf("exec %q: %v", argv, err)
	}
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return string(o), string(e), st
}

// otherExperimentSocket starts a second node as another experiment would
// have it, its exec socket under /run/vmux, and returns that socket.
func otherExperimentSocket(t *testing.T) string {
	t.Helper()
	testutil.MustRoot(t)
	if _, err := os.Stat(netRunRoot); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(netRunRoot, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(netRunRoot) })
	}
	exp := fmt.Sprintf("t%d-other", time.Now().UnixNano()%1e9)
	dir := filepath.Join(netRunRoot, exp, "nodes")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(netRunRoot, exp)) })
	other, err := Start(Config{Experiment: exp, Name: "other", Socket: filepath.Join(dir, "other.sock"), Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Stop(2 * time.Second) })
	return other.cfg.Socket
}

// netRunRoot is netd.RunRoot (netd imports node, not the reverse).
const netRunRoot = "/run/vmux"

// hostile runs the escape attempts in n and returns attempt -> outcome.
func hostile(t *testing.T, n *Node, otherSock string, safeOnly bool) map[string]string {
	t.Helper()
	safe := "0"
	if safeOnly {
		safe = "1"
	}
	out, errs, st := runEnv(t, n, []string{reexec.Env + "=" + hostileRole}, reexec.Self, strconv.Itoa(os.Getpid()), otherSock, safe)
	if st.Code != 0 {
		t.Fatalf("hostile program: %+v\n%s", st, errs)
	}
	var res map[string]string
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("hostile program output %q: %v", out, err)
	}
	return res
}

// Every escape attempt of the suite is refused inside a node: leave its
// memory cgroup, write a host sysctl or KSM's controls, reach /run/vmux or
// another experiment's exec socket, mount, load a module, ptrace or signal
// a host process, change the host clock, setns, new namespaces, raw I/O,
// devices, open_by_handle_at, BPF, io_uring, keyrings, ... Before the
// sandbox a node's processes were the host's root with nearly every
// capability; a privileged node still is, and there the same probes
// succeed (so they are real).
func TestSandboxRefusesEscapes(t *testing.T) {
	otherSock := otherExperimentSocket(t)
	n, _ := startTestNode(t, Limits{Memory: 256 << 20})
	res := hostile(t, n, otherSock, false)
	names := make([]string, 0, len(res))
	for k := range res {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) != len(attempts) {
		t.Errorf("%d outcomes for %d attempts", len(names), len(attempts))
	}
	for _, k := range names {
		t.Logf("%-24s %s", k, res[k])
		if res[k] == "ok" {
			t.Errorf("escape attempt %s succeeded in a sandboxed node", k)
		}
	}
	// The node is still whole: its init serves, the probe did not leave.
	if out, _, _ := run(t, n, "cat", "/proc/self/cgroup"); !strings.Contains(out, ":memory:/\n") {
		t.Errorf("node process cgroups (in its cgroup namespace):\n%s\nwant memory at its root", out)
	}
}

func TestPrivilegedNodeIsNotSandboxed(t *testing.T) {
	otherSock := otherExperimentSocket(t)
	n, _ := startTestNodeWith(t, Limits{}, func(c *Config, _ string) { c.Privileged = true })
	res := hostile(t, n, otherSock, true)
	for _, k := range []string{"leave-memory-cgroup", "mount-cgroupfs", "see-run-vmux", "reach-other-exec-socket", "mount-tmpfs",
		"remount-root-rw", "ptrace-node-init", "setns-own-netns", "open-init-mount-ns", "read-init-root", "clone-user-ns",
		"unshare-mount-ns", "clone3", "mknod-disk", "open-by-handle", "sethostname", "keyctl", "gain-capabilities"} {
		if res[k] != "ok" {
			t.Errorf("privileged node: %s = %s, want ok (the probe must detect an unconfined node)", k, res[k])
		}
	}
}

// What a sandboxed process is: bounded capabilities, no_new_privs, a
// seccomp filter, its cgroup namespace, read-only host file systems,
// private scratch space, its own /dev, /sys with its own cgroups only.
func TestSandboxedProcess(t *testing.T) {
	n, _ := startTestNode(t, Limits{Memory: 128 << 20})
	out, _, _ := run(t, n, "cat", "/proc/self/status")
	st, err := parseProcStatus(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.capBnd != uint64(NodeCaps) || st.capEff != uint64(NodeCaps) || !st.noNewPrivs || st.seccomp != 2 {
		t.Errorf("launched process: bounding %#x effective %#x (want %#x), no_new_privs %v, seccomp %d", st.capBnd, st.capEff, uint64(NodeCaps), st.noNewPrivs, st.seccomp)
	}
	if !NodeCaps.Has(linux.CapNetAdmin) || NodeCaps.Has(linux.CapSysAdmin) {
		t.Error("NodeCaps: want NET_ADMIN, not SYS_ADMIN")
	}
	checks := []struct {
		argv []string
		code int
		want string
	}{
		{[]string{"sh", "-c", "echo scratch > /tmp/x && cat /tmp/x && echo y > /var/tmp/y && echo z > /run/z && echo s > /dev/shm/s"}, 0, "scratch\n"},
		{[]string{"sh", "-c", "touch /usr/vmux-test 2>&1"}, 1, "Read-only file system"},
		{[]string{"cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}, 0, strconv.Itoa(128 << 20)},
		{[]string{"ls", "/sys/fs/cgroup"}, 0, "memory"},
		{[]string{"sh", "-c", "ls /dev | tr '\\n' ' '"}, 0, "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero "},
		{[]string{"ls", "/sys/class/net"}, 0, "lo"},
		// Private scratch: only what this node wrote (no /run/vmux, no
		// host temp files).
		{[]string{"sh", "-c", "echo $(ls -A /run /tmp /var/tmp)"}, 0, "/run: z /tmp: x /var/tmp: y\n"},
	}
	for _, c := range checks {
		out, errs, es := run(t, n, c.argv...)
		if es.Code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("%q: code %d out %q err %q, want code %d and %q", c.argv, es.Code, out, errs, c.code, c.want)
		}
	}
	// The node's cgroups list no vmux tree and no other hierarchy.
	if out, _, _ := run(t, n, "ls", "/sys/fs/cgroup"); strings.Contains(out, "cpuset") || strings.Contains(out, "unified") {
		t.Errorf("/sys/fs/cgroup in the node: %q", out)
	}
	if out, _, _ := run(t, n, "ls", "/sys/fs/cgroup/memory"); strings.Contains(out, "vmux") {
		t.Errorf("the node's memory cgroup shows %q", out)
	}
}

func TestParseProcStatus(t *testing.T) {
	st, err := parseProcStatus("Name:\tx\nCapEff:\t00000000a80425fb\nCapBnd:\t000001ffffffffff\nNoNewPrivs:\t1\nSeccomp:\t2\n")
	if err != nil || st.capEff != 0xa80425fb || st.capBnd != 0x1ffffffffff || !st.noNewPrivs || st.seccomp != 2 {
		t.Errorf("parse: %+v %v", st, err)
	}
	if _, err := parseProcStatus("CapEff:\t0\n"); err == nil {
		t.Error("parsed an incomplete status")
	}
}
