package server

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/diskmodel"
	nodes "github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
)

// fioArgs is examples/disk.yaml's job: 4 KiB random O_DIRECT reads at
// queue depth 1, JSON on stdout.
func fioArgs(file string) []string {
	return []string{"--name=rr", "--filename=" + file, "--size=32M", "--rw=randread", "--bs=4k", "--direct=1",
		"--ioengine=psync", "--iodepth=1", "--time_based", "--runtime=2", "--output-format=json"}
}

// fioP50 reads fio's median completion latency (µs) from its JSON.
func fioP50(t *testing.T, out string) float64 {
	t.Helper()
	var r struct {
		Jobs []struct {
			Read struct {
				Clat struct {
					Percentile map[string]float64 `json:"percentile"`
				} `json:"clat_ns"`
			} `json:"read"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); err != nil || len(r.Jobs) == 0 {
		t.Fatalf("fio output: %v: %.300s", err, out)
	}
	return r.Jobs[0].Read.Clat.Percentile["50.000000"] / 1000
}

// TestDiskModel: a node with the disk model at k=4 sees its writable
// directory through the model (a FUSE mount in its namespace only, its
// server confined in the node's memory and blkio cgroups, its CPU outside
// the node's quota) and fio's O_DIRECT reads there
// take ~4x what they take in a node without it (neither node is dilated:
// real time; a node's reads take ~25 µs more than the host's own, its
// cgroup's and sandbox's cost, which the model scales too); after Stop
// neither the mount nor the server is left.
func TestDiskModel(t *testing.T) {
	testutil.MustRoot(t)
	fio := testutil.MustHaveCommand(t, "fio")
	work := filepath.Join(t.TempDir(), "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(work, "data")
	host := func() float64 {
		out, err := exec.Command(fio, fioArgs(data)...).Output()
		if err != nil {
			t.Fatalf("fio on the host: %v", err)
		}
		return fioP50(t, string(out))
	}
	raw := host()
	plain := startNode(t, work, 0)
	nodeFio := func(n *nodes.Node) float64 {
		out, errOut, st := run(t, n, append([]string{"fio"}, fioArgs(data)...)...)
		if st.Code != 0 {
			t.Fatalf("fio in the node: %+v %s", st, errOut)
		}
		return fioP50(t, out)
	}
	base := nodeFio(plain)
	// Registered first, so it runs after the node's own teardown.
	t.Cleanup(func() {
		if m := testutil.MountsOfType("fuse.vmux-disk"); len(m) != 0 {
			t.Errorf("model mounts left after stop: %v", m)
		}
		if p := testutil.ProcessesNamed(reexec.Argv0(diskmodel.Role)); len(p) != 0 {
			t.Errorf("disk model servers left after stop: %v", p)
		}
	})
	n := startNode(t, work, 4)
	out, errOut, st := run(t, n, "grep", "-c", "fuse.vmux-disk", "/proc/self/mountinfo")
	if st.Code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("model mounts in the node: %q %q %+v, want 1", out, errOut, st)
	}
	if m := testutil.MountsOfType("fuse.vmux-disk"); len(m) != 1 {
		t.Errorf("model mounts on the host: %v, want only the node's", m)
	}
	servers := testutil.ProcessesNamed(reexec.Argv0(diskmodel.Role))
	if len(servers) != 1 {
		t.Fatalf("disk model servers: %v, want 1", servers)
	}
	// The server's CPU is the experiment's (no quota), its memory and
	// disk the node's.
	cgs, _ := os.ReadFile("/proc/" + strconv.Itoa(servers[0]) + "/cgroup")
	for _, line := range strings.Split(strings.TrimSpace(string(cgs)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		switch f[1] {
		case "cpu", "cpu,cpuacct", "cpuacct":
			if !strings.HasSuffix(f[2], "/_disk-alpha") {
				t.Errorf("server's %s cgroup %s, want .../_disk-alpha", f[1], f[2])
			}
		case "memory", "blkio":
			if !strings.HasSuffix(f[2], "/alpha") {
				t.Errorf("server's %s cgroup %s, want the node's", f[1], f[2])
			}
		}
	}
	model := nodeFio(n)
	base2 := nodeFio(plain)
	t.Logf("fio O_DIRECT 4k read p50: host %.1f µs, node %.1f / %.1f µs, node with the model at k=4 %.1f µs (%.2fx the node's)",
		raw, base, base2, model, model/((base+base2)/2))
	// 4 is the model; the window is what runs on this shared machine
	// measured (3.76-4.95x: the server's own reads of the device take
	// 15-30 µs more than fio's, docs/design/cast.md; under the race
	// detector, whose instrumentation of the server adds ~100 µs a
	// reply, 5.2-6.6x), far from 1 either way.
	hi := 5.5
	if raceOn {
		hi = 8
	}
	if r := model / ((base + base2) / 2); r < 3 || r > hi {
		t.Errorf("through the model at k=4: %.2fx the plain node's p50, want 4 (3-%v)", r, hi)
	}
	ents, _ := os.ReadDir(work)
	if len(ents) != 1 {
		t.Errorf("work directory holds %v, want only data (calibration files removed)", ents)
	}
}

// startNode starts a node whose writable directory is work, with the disk
// model at k (0: none), stopped (and checked for leaks) at the end.
func startNode(t *testing.T, work string, k float64) *nodes.Node {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		t.Fatal(err)
	}
	exp := fmt.Sprintf("dm%d", time.Now().UnixNano()%1e9)
	var dm *diskmodel.Model
	if k != 0 {
		dm = &diskmodel.Model{Factor: k}
	}
	n, err := nodes.Start(nodes.Config{Experiment: exp, Name: "alpha", Socket: filepath.Join(sock, "alpha.sock"),
		Writable: []string{work}, DiskModel: dm, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	st := n.State()
	t.Cleanup(func() {
		if err := n.Stop(2 * time.Second); err != nil {
			t.Errorf("stop: %v", err)
		}
		testutil.CheckNoLeaks(t, testutil.Leaks{Pids: []int{st.Pid}, NetnsInodes: []uint64{st.NetnsInode}, Paths: append(st.Cgroups, st.Socket)})
	})
	return n
}

// run executes argv in n and returns stdout, stderr and the status.
func run(t *testing.T, n *nodes.Node, argv ...string) (string, string, nodes.ExitStatus) {
	t.Helper()
	dir := t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "out"))
	errf, _ := os.Create(filepath.Join(dir, "err"))
	in, _ := os.Open(os.DevNull)
	defer out.Close()
	defer errf.Close()
	defer in.Close()
	st, err := nodes.Exec(n.Name(), n.State().Socket, nodes.ExecOptions{Argv: argv, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Stdin: in, Stdout: out, Stderr: errf})
	if err != nil {
		t.Fatalf("exec %q: %v", argv, err)
	}
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return string(o), string(e), st
}
