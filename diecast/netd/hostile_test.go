package netd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/diecast/topology"
	"github.com/vmux/vmux/internal/safefile"
	"github.com/vmux/vmux/internal/testutil"
)

// TestUpRefusesHostileSpecFiles reproduces issue 10, item 4: `vmux net up
// /dev/zero` read 24 GB (the OOM killer fired) because the size check came
// after reading the whole file, and `vmux net up FIFO` blocked in open.
// Both, a sparse 1 TB file and a directory, fail at once, create nothing.
func TestUpRefusesHostileSpecFiles(t *testing.T) {
	testutil.MustRoot(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	f, _ := os.Create(big)
	f.Truncate(1 << 40)
	f.Close()
	before, _ := List()
	for _, p := range []string{"/dev/zero", fifo, big, dir} {
		done := make(chan error, 1)
		go func() { _, err := Up(p, UpOptions{}); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, topology.ErrInvalidSpec) ||
				!(errors.Is(err, safefile.ErrNotRegular) || errors.Is(err, safefile.ErrTooLarge)) {
				t.Errorf("Up(%s): %v, want a refused spec file", p, err)
			}
		case <-time.After(5 * time.Second):
			os.WriteFile(fifo, nil, 0)
			t.Fatalf("Up(%s) blocked", p)
		}
	}
	if after, _ := List(); len(after) != len(before) {
		t.Errorf("experiments %v after refused specs, %v before", after, before)
	}
}

// hostileSpec is a spec of a few nodes, slow enough to bring up that a
// signal lands in the middle.
const hostileSpec = `name: %s
nodes:
  n: {count: 12}
switches: [s]
links:
  - ends: [n, s]
`

// TestUpCancelled: a bring-up whose context ends (vmux net up got SIGINT
// or SIGTERM) returns the context's error and leaves nothing behind.
func TestUpCancelled(t *testing.T) {
	testutil.MustRoot(t)
	name := fmt.Sprintf("cancel%d", os.Getpid()%100000)
	p := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(p, []byte(fmt.Sprintf(hostileSpec, name)), 0o600)
	for _, after := range []time.Duration{0, 5 * time.Millisecond, 60 * time.Millisecond} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(after, cancel)
		t0 := time.Now()
		st, err := UpContext(ctx, p, UpOptions{})
		took := time.Since(t0)
		cancel()
		if err == nil {
			// The bring-up beat the cancellation: fine, but then down.
			Down(name, 3*time.Second)
			checkGone(t, st)
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %v: %v, want context.Canceled", after, err)
		}
		if took > cancelGrace+5*time.Second {
			t.Errorf("cancelled after %v: returned after %v", after, took)
		}
		if _, err := os.Stat(Dir(name)); err == nil {
			t.Errorf("cancelled after %v: run dir left", after)
		}
		if left := testutil.CgroupDirsNamed("vmux/" + name); len(left) > 0 {
			t.Errorf("cancelled after %v: cgroups left: %v", after, left)
		}
	}
}

// TestUpCLIStopsOnSIGTERM reproduces the issue's `timeout 3 vmux net up
// FIFO` (it ran 608 s) and a SIGTERM in the middle of a real bring-up: vmux
// net up ends at once, dies of the signal, and tears down what it started.
func TestUpCLIStopsOnSIGTERM(t *testing.T) {
	testutil.MustRoot(t)
	vmux := vmuxBinary(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	t0 := time.Now()
	out, err := exec.Command("timeout", "3", vmux, "net", "up", fifo).CombinedOutput()
	if d := time.Since(t0); d > 2*time.Second || err == nil || !strings.Contains(string(out), "not a regular file") {
		t.Errorf("net up FIFO: %v after %v: %s", err, d, out)
	}

	name := fmt.Sprintf("sigterm%d", os.Getpid()%100000)
	p := filepath.Join(dir, "spec.yaml")
	os.WriteFile(p, []byte(fmt.Sprintf(hostileSpec, name)), 0o600)
	cmd := exec.Command(vmux, "net", "up", p)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Signal once the bring-up has visibly begun.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if _, err := os.Stat(Dir(name)); err == nil {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(cancelGrace + 10*time.Second):
		cmd.Process.Kill()
		t.Fatal("vmux net up did not stop on SIGTERM")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			// The bring-up may have won the race: then it is up.
			if ws.ExitStatus() != 0 {
				t.Errorf("vmux net up after SIGTERM: %v, want death by SIGTERM; stderr %s", ws, stderr.String())
			}
		}
	}
	if err == nil {
		t.Log("the bring-up finished before the signal arrived")
		Down(name, 3*time.Second)
	}
	if _, err := os.Stat(Dir(name)); err == nil {
		Down(name, 3*time.Second)
		t.Errorf("run dir left after SIGTERM")
	}
	if left := testutil.CgroupDirsNamed("vmux/" + name); len(left) > 0 {
		t.Errorf("cgroups left after SIGTERM: %v", left)
	}
}

// TestUpChecksEveryNode: the readiness check net up makes after the
// daemon's report fails for a node whose init is gone.
func TestUpChecksEveryNode(t *testing.T) {
	st := up(t, "name: %s\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\n")
	if err := st.checkUp(); err != nil {
		t.Fatalf("a running experiment: %v", err)
	}
	b, _ := st.Node("b")
	if err := node.KillAndWait(b.Pid, b.StartTime, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := st.checkUp(); !errors.Is(err, ErrNotUp) || !strings.Contains(err.Error(), "node b") {
		t.Errorf("with b's init killed: %v, want ErrNotUp naming b", err)
	}
}

// TestRunDirPrivate: the run directory's files are root's only whatever the
// umask (the log holds the argv of every exec), except the hosts file that
// node processes of any user read.
func TestRunDirPrivate(t *testing.T) {
	old := syscall.Umask(0)
	st := up(t, "name: %s\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\n")
	syscall.Umask(old)
	execIn(t, st, "a", "true") // something in the log
	if fi, err := os.Stat(Dir(st.Name)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("run directory: %v, want mode 0700", err)
	}
	for name, want := range map[string]os.FileMode{"log": 0o600, "state.json": 0o600, "spec.yaml": 0o600, "hosts": 0o644} {
		fi, err := os.Stat(filepath.Join(Dir(st.Name), name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
}

// TestDilatedCPUShareAccepted: a node whose real CPU share has no exact
// decimal form (cpu 0.5 at tdf 3) runs its programs under --dilate; every
// exec failed when the launcher passed --cpu 0.16666666666666666, which
// vmux run refuses as too precise.
func TestDilatedCPUShareAccepted(t *testing.T) {
	st := upWith(t, "name: %s\ntdf: 3\nnodes: {a: {cpu: 0.5}, b: {}}\nlinks: [{ends: [a, b]}]\n",
		UpOptions{Exe: vmuxBinary(t), Dilate: true})
	out, errs, es := execIn(t, st, "a", "echo", "ok")
	if es.Code != 0 || strings.TrimSpace(out) != "ok" {
		t.Fatalf("exec in a dilated node with cpu 0.5 at tdf 3: %q %q %+v", out, errs, es)
	}
}
