package netd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/vmux/vmux/diecast/node"
	"github.com/vmux/vmux/internal/linux"
)

// Down tears experiment name down from its state on disk: it asks the
// daemon to stop (SIGTERM) and waits up to grace, then, whether or not the
// daemon was alive, kills every recorded node init and everything left in
// the experiment's cgroups, removes the cgroups and the run directory. It is
// idempotent: an experiment that is not up is not an error.
func Down(name string, grace time.Duration) error {
	if err := node.ValidName(name); err != nil {
		return err
	}
	st, err := Load(name)
	if errors.Is(err, ErrNotFound) {
		removeRemains(name)
		return nil
	}
	if err != nil {
		return err
	}
	if st.DaemonAlive() {
		_ = linux.Kill(st.Daemon.Pid, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for st.DaemonAlive() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := node.KillAndWait(st.Daemon.Pid, st.Daemon.StartTime, 2*time.Second); err != nil {
			return fmt.Errorf("stop daemon of %s: %w", name, err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(st.Nodes))
	for i, n := range st.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = node.Destroy(n.State, 3*time.Second)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down %s: %w", name, err)
	}
	return removeRemains(name)
}

// removeRemains removes what is named after the experiment even if the
// state never recorded it (a crash between creating a node's cgroup and
// saving the state): cgroup directories vmux/<name>/* under every
// hierarchy, then the run directory.
func removeRemains(name string) error {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "vmux", name, "*"))
	v2, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "vmux", name, "*"))
	dirs = append(dirs, v2...)
	var out []string
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			out = append(out, d)
		}
	}
	err := node.RemoveCgroups(out, 3*time.Second)
	exps, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "vmux", name))
	for _, e := range append(exps, filepath.Join("/sys/fs/cgroup", "vmux", name)) {
		_ = os.Remove(e) // empty by now; a racing bring-up keeps it (EBUSY)
		_ = os.Remove(filepath.Dir(e))
	}
	if e := os.RemoveAll(Dir(name)); e != nil && !errors.Is(e, fs.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("remove run dir: %w", e))
	}
	return err
}
