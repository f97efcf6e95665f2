package netd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/diskmodel"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
)

// diskKillSpec: two dilated nodes with the disk latency model, one of
// them throttled (its rate is its server's: the model paces it).
const diskKillSpec = `name: %s
tdf: 2
nodes:
  a: {disk: {latency_model: true}}
  b: {disk: {read_iops: 500, write_iops: 500, latency_model: true}}
links: [{ends: [a, b]}]
`

// TestDownAfterDiskModelDaemonSIGKILL: kill -9 of the daemon of a dilated
// experiment whose nodes have the disk latency model, then Down (what
// `vmux net down` does), leaves none of the model behind: no server, no
// FUSE mount in any mount namespace, no cgroup of the experiment (the
// servers' _disk-<node> included), no run directory, no calibration file
// in the writable directory.
func TestDownAfterDiskModelDaemonSIGKILL(t *testing.T) {
	testutil.MustRoot(t)
	fuseType := "fuse.vmux-disk"
	server := reexec.Argv0(diskmodel.Role)
	if m, p := testutil.MountsOfType(fuseType), testutil.ProcessesNamed(server); len(m)+len(p) > 0 {
		t.Fatalf("disk model mounts %v and servers %v before the test", m, p)
	}
	work := t.TempDir()
	st := upWith(t, diskKillSpec, UpOptions{Exe: fastDaemon(t), Dilate: true, Writable: []string{work}})
	// A read through each node's model: O_DIRECT, so the server serves it.
	for _, n := range []string{"a", "b"} {
		f := filepath.Join(work, n)
		mustExec(t, st, n, "dd", "if=/dev/zero", "of="+f, "bs=4k", "count=16", "oflag=direct", "status=none")
		mustExec(t, st, n, "dd", "if="+f, "of=/dev/null", "bs=4k", "iflag=direct", "status=none")
		if out := mustExec(t, st, n, "grep", "-c", fuseType, "/proc/self/mountinfo"); strings.TrimSpace(out) != "1" {
			t.Errorf("node %s: %s disk model mounts, want 1 (over %s)", n, strings.TrimSpace(out), work)
		}
	}
	if p := testutil.ProcessesNamed(server); len(p) != 2 {
		t.Fatalf("disk model servers %v, want one a node", p)
	}
	if m := testutil.MountsOfType(fuseType); len(m) != 2 {
		t.Fatalf("disk model mounts %v, want one a node", m)
	}
	// The servers' cgroups (v1: cpu and cpuacct, out of the node's quota;
	// on v2 the servers stay in the node's one directory).
	disk := testutil.CgroupDirsNamed("vmux/" + st.Name + "/_disk-")
	if _, err := os.Stat("/sys/fs/cgroup/cpu"); err == nil && len(disk) < 2 {
		t.Fatalf("the servers' cgroups: %v, want vmux/%s/_disk-a and _disk-b", disk, st.Name)
	}

	t.Logf("before kill -9: servers %v, mounts %v, servers' cgroups %v", testutil.ProcessesNamed(server), testutil.MountsOfType(fuseType), disk)
	if err := syscall.Kill(st.Daemon.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for st.DaemonAlive() {
		time.Sleep(5 * time.Millisecond)
	}
	if err := Down(st.Name, time.Second); err != nil {
		t.Fatal(err)
	}
	checkGone(t, st) // the daemon, the nodes, every cgroup of vmux/<name>, /run/vmux/<name>
	testutil.CheckNoLeaks(t, testutil.Leaks{Paths: disk})
	var left []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left = left[:0]
		for _, p := range testutil.ProcessesNamed(server) {
			left = append(left, "server "+strconv.Itoa(p))
		}
		left = append(left, testutil.MountsOfType(fuseType)...)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("after kill -9 and down: %v", left)
	}
	if c, _ := filepath.Glob(filepath.Join(work, ".vmux-disk-calibrate-*")); len(c) > 0 {
		t.Errorf("calibration files left: %v", c)
	}
}
