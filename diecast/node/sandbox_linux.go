package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/vmux/vmux/internal/linux"
)

// NodeCaps are the capabilities a node's processes keep (its bounding
// set: nothing it runs can gain another). Docker's default set, less
// CAP_MKNOD (a node's /dev is made for it) and CAP_SETFCAP (no file
// capabilities to grant: no_new_privs ignores them), plus CAP_NET_ADMIN,
// which acts on the node's own network namespace only (its interfaces,
// routes, tc, netfilter). Everything else
// is dropped: CAP_SYS_ADMIN (mount, setns, namespaces, sethostname, ...),
// CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_PTRACE, CAP_SYS_TIME,
// CAP_SYS_BOOT, CAP_SYS_NICE, CAP_SYS_RESOURCE, CAP_DAC_READ_SEARCH
// (open_by_handle_at escapes a mount namespace), CAP_BPF, CAP_PERFMON,
// CAP_IPC_LOCK, CAP_SYSLOG, CAP_MAC_*, CAP_AUDIT_CONTROL, ...
var NodeCaps = linux.CapsOf(
	linux.CapChown, linux.CapDacOverride, linux.CapFowner, linux.CapFsetid,
	linux.CapKill, linux.CapSetgid, linux.CapSetuid, linux.CapSetpcap,
	linux.CapNetBindService, linux.CapNetRaw, linux.CapNetAdmin,
	linux.CapSysChroot, linux.CapAuditWrite,
)

// ErrNotConfined: a launcher started a process outside the sandbox (it
// forked on another OS thread than the one Launch was called on).
var ErrNotConfined = errors.New("launched process is not confined to the node sandbox")

// sandbox is what a node's init applies to every process it launches. Its
// file system view is set up once for the whole mount namespace
// (setupRootFS); credentials, the cgroup namespace and the seccomp filter
// are per thread in Linux, so each launch runs on a fresh OS thread that is
// confined first and never returned to the Go scheduler, and every process
// forked from it inherits the confinement.
type sandbox struct {
	privileged bool
	root       string // private root file system ("" the host's)
	filter     linux.SeccompProgram
	cgroupNS   string // init's cgroup namespace, which launched processes must not share
}

func newSandbox(cfg initConfig) (*sandbox, error) {
	s := &sandbox{privileged: cfg.Privileged, root: cfg.Root}
	if s.privileged {
		return s, nil
	}
	prog, err := linux.SandboxSeccomp()
	if err != nil {
		return nil, fmt.Errorf("build node seccomp filter: %w", err)
	}
	s.filter = prog
	if s.cgroupNS, err = os.Readlink("/proc/self/ns/cgroup"); err != nil {
		return nil, fmt.Errorf("read init's cgroup namespace: %w", err)
	}
	return s, nil
}

// launch starts p through l, confined. Launch must fork on the goroutine
// that calls it (as syscall.ForkExec and os/exec do); a process that turns
// out not to be confined is killed (ErrNotConfined).
func (s *sandbox) launch(l Launcher, p *Process) (int, error) {
	if s.privileged {
		return l.Launch(p)
	}
	if s.root != "" && p.Dir != "" {
		if st, err := os.Stat(p.Dir); err != nil || !st.IsDir() {
			q := *p
			q.Dir = "/" // the caller's directory is not in the node's root
			p = &q
		}
	}
	type result struct {
		pid int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the confined thread exits with this goroutine.
		runtime.LockOSThread()
		if err := s.confineThread(); err != nil {
			ch <- result{err: fmt.Errorf("confine launch thread: %w", err)}
			return
		}
		pid, err := l.Launch(p)
		ch <- result{pid, err}
	}()
	r := <-ch
	if r.err != nil {
		return 0, r.err
	}
	if err := s.verify(r.pid); err != nil {
		_ = linux.Kill(r.pid, linux.SIGKILL)
		return 0, err
	}
	return r.pid, nil
}

// confineThread applies the sandbox to the calling (locked) thread: a
// cgroup namespace rooted at the node's cgroups (needs CAP_SYS_ADMIN, so
// first), no_new_privs, the seccomp filter, then the bounded capabilities.
func (s *sandbox) confineThread() error {
	if err := linux.UnshareCgroupNS(); err != nil {
		return err
	}
	if err := linux.SetNoNewPrivs(); err != nil {
		return err
	}
	if err := linux.InstallSeccomp(s.filter); err != nil {
		return err
	}
	return linux.BoundThreadCaps(NodeCaps)
}

// verify checks, from /proc, that process pid is confined: bounding and
// effective sets within NodeCaps, no_new_privs, a seccomp filter and a
// cgroup namespace other than init's. A process already gone (and reaped)
// has nothing left to check.
func (s *sandbox) verify(pid int) error {
	st, err := readProcStatus(pid)
	if gone(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/cgroup", pid))
	if gone(err) {
		return nil
	}
	switch {
	case err != nil:
		return fmt.Errorf("verify launched process: %w", err)
	case st.capBnd&^uint64(NodeCaps) != 0 || st.capEff&^uint64(NodeCaps) != 0:
		return fmt.Errorf("%w: pid %d has capabilities %#x (bounding %#x)", ErrNotConfined, pid, st.capEff, st.capBnd)
	case !st.noNewPrivs || st.seccomp == 0:
		return fmt.Errorf("%w: pid %d has no_new_privs %v, seccomp mode %d", ErrNotConfined, pid, st.noNewPrivs, st.seccomp)
	case ns == s.cgroupNS:
		return fmt.Errorf("%w: pid %d shares init's cgroup namespace", ErrNotConfined, pid)
	}
	return nil
}

// gone reports whether err says the process has exited and been reaped
// (its /proc directory vanishes, mid-read too: ESRCH).
func gone(err error) bool { return errors.Is(err, fs.ErrNotExist) || linux.IsNoProcess(err) }

// procStatus is what verify reads from /proc/PID/status.
type procStatus struct {
	capBnd, capEff uint64
	noNewPrivs     bool
	seccomp        int
}

func readProcStatus(pid int) (procStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, err
	}
	return parseProcStatus(string(b))
}

func parseProcStatus(s string) (procStatus, error) {
	var st procStatus
	seen := 0
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		var err error
		switch k {
		case "CapBnd":
			st.capBnd, err = strconv.ParseUint(v, 16, 64)
		case "CapEff":
			st.capEff, err = strconv.ParseUint(v, 16, 64)
		case "NoNewPrivs":
			st.noNewPrivs = v == "1"
		case "Seccomp":
			st.seccomp, err = strconv.Atoi(v)
		default:
			continue
		}
		if err != nil {
			return st, fmt.Errorf("parse /proc status %s: %w", k, err)
		}
		seen++
	}
	if seen != 4 {
		return st, fmt.Errorf("parse /proc status: %d of CapBnd, CapEff, NoNewPrivs, Seccomp found", seen)
	}
	return st, nil
}
