package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/rt/reexec"
)

// hostileRole is a program run inside a node that tries to escape it
// (the sandbox test suite): hostile HOSTPID OTHERSOCK. It prints a JSON
// object: attempt -> "ok" if it succeeded, else the errno's name.
const hostileRole = "node-hostile-test"

func init() { reexec.Register(hostileRole, hostileMain) }

// attempt is one escape attempt; safe ones change nothing outside the
// node's own namespaces even when they succeed (they also run in a
// privileged node, where they must succeed: the probe is real).
type attempt struct {
	name string
	safe bool
	do   func(a hostileArgs) error
}

type hostileArgs struct {
	hostPid   int
	otherSock string
}

var attempts = []attempt{
	// Leave the memory cgroup (the reported attack): in a sandbox this is
	// the node's own cgroup, read-only; privileged, the host's root.
	{"leave-memory-cgroup", true, func(hostileArgs) error {
		return writeFile("/sys/fs/cgroup/memory/cgroup.procs", strconv.Itoa(os.Getpid()))
	}},
	{"mount-cgroupfs", true, func(hostileArgs) error {
		return unix.Mount("cgroup", "/mnt", "cgroup", 0, "memory")
	}},
	{"write-host-sysctl", false, func(hostileArgs) error { return rewrite("/proc/sys/vm/stat_interval") }},
	{"write-ksm-run", false, func(hostileArgs) error { return rewrite("/sys/kernel/mm/ksm/run") }},
	{"open-sysrq-trigger", false, func(hostileArgs) error {
		fd, err := unix.Open("/proc/sysrq-trigger", unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}},
	{"see-run-vmux", true, func(hostileArgs) error {
		var st unix.Stat_t
		return unix.Stat("/run/vmux", &st)
	}},
	{"reach-other-exec-socket", true, func(a hostileArgs) error {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Connect(fd, &unix.SockaddrUnix{Name: a.otherSock})
	}},
	{"write-host-file", false, func(hostileArgs) error {
		p := fmt.Sprintf("/etc/vmux-hostile-%d", os.Getpid())
		err := os.WriteFile(p, []byte("x"), 0o644)
		if err == nil {
			os.Remove(p)
		}
		return err
	}},
	{"mount-tmpfs", true, func(hostileArgs) error { return unix.Mount("tmpfs", "/mnt", "tmpfs", 0, "") }},
	{"unmount-proc-sys", true, func(hostileArgs) error { return unix.Unmount("/proc/sys", unix.MNT_DETACH) }},
	{"remount-root-rw", true, func(hostileArgs) error {
		return unix.MountSetattr(unix.AT_FDCWD, "/", 0, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY})
	}},
	{"load-module", false, func(hostileArgs) error {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.FinitModule(fd, "", 0)
	}},
	{"ptrace-node-init", true, func(hostileArgs) error {
		return unix.PtraceSeize(1) // seize stops nothing; exiting detaches
	}},
	{"ptrace-host-process", true, func(a hostileArgs) error {
		return unix.PtraceSeize(a.hostPid)
	}},
	{"signal-host-process", true, func(a hostileArgs) error { return unix.Kill(a.hostPid, 0) }},
	{"set-host-clock", false, func(hostileArgs) error {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
			return err
		}
		return unix.ClockSettime(unix.CLOCK_REALTIME, &ts)
	}},
	{"adjtimex", false, func(hostileArgs) error {
		tx := unix.Timex{Modes: unix.ADJ_TICK, Tick: 10000} // the default tick
		_, err := unix.Adjtimex(&tx)
		return err
	}},
	{"setns-own-netns", true, func(hostileArgs) error {
		fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Setns(fd, unix.CLONE_NEWNET)
	}},
	{"open-init-mount-ns", true, func(hostileArgs) error {
		fd, err := unix.Open("/proc/1/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}},
	{"read-init-root", true, func(hostileArgs) error {
		_, err := os.ReadDir("/proc/1/root/")
		return err
	}},
	{"clone-user-ns", true, func(hostileArgs) error {
		// A child in a new user namespace (unshare would refuse a
		// multi-threaded caller whatever the sandbox).
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
		return cmd.Run()
	}},
	{"unshare-mount-ns", true, func(hostileArgs) error { return unix.Unshare(unix.CLONE_NEWNS) }},
	{"clone3", true, func(hostileArgs) error {
		_, _, e := unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
		if e == unix.EFAULT || e == unix.EINVAL {
			return nil // the kernel looked at the (missing) arguments: not refused
		}
		return e
	}},
	{"mknod-disk", true, func(hostileArgs) error {
		p := fmt.Sprintf("/tmp/disk-%d", os.Getpid())
		err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(254, 0)))
		if err == nil {
			os.Remove(p)
		}
		return err
	}},
	{"iopl", false, func(hostileArgs) error { _, _, e := unix.RawSyscall(unix.SYS_IOPL, 3, 0, 0); return errnoErr(e) }},
	{"open-by-handle", true, func(hostileArgs) error {
		h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, "/etc", 0)
		if err != nil {
			return err
		}
		mnt, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(mnt)
		fd, err := unix.OpenByHandleAt(mnt, h, unix.O_RDONLY)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}},
	{"sethostname", true, func(hostileArgs) error { return unix.Sethostname([]byte("evil")) }},
	{"reboot", false, func(hostileArgs) error {
		// Wrong magic: with CAP_SYS_BOOT the kernel says EINVAL, without it
		// EPERM; nothing reboots either way.
		_, _, e := unix.RawSyscall6(unix.SYS_REBOOT, 0, 0, 0, 0, 0, 0)
		if e == unix.EINVAL {
			return nil
		}
		return errnoErr(e)
	}},
	{"keyctl", true, func(hostileArgs) error {
		_, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
		return err
	}},
	{"bpf-prog-load", true, func(hostileArgs) error {
		insns := []uint64{0x00000000000000b7, 0x0000000000000095} // r0 = 0; exit
		lic := []byte("GPL\x00")
		attr := struct {
			typ, cnt     uint32
			insns, lic   uint64
			logLvl, logS uint32
			logBuf       uint64
		}{typ: unix.BPF_PROG_TYPE_SOCKET_FILTER, cnt: 2, insns: uint64(uintptr(unsafe.Pointer(&insns[0]))), lic: uint64(uintptr(unsafe.Pointer(&lic[0])))}
		fd, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		if e == 0 {
			unix.Close(int(fd))
		}
		return errnoErr(e)
	}},
	{"io-uring", true, func(hostileArgs) error {
		var params [120]byte
		fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
		if e == 0 {
			unix.Close(int(fd))
		}
		return errnoErr(e)
	}},
	{"userfaultfd", true, func(hostileArgs) error {
		fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
		if e == 0 {
			unix.Close(int(fd))
		}
		return errnoErr(e)
	}},
	{"open-host-disk", true, func(hostileArgs) error {
		f, err := os.Open("/dev/vda")
		if err == nil {
			f.Close()
		}
		return err
	}},
	{"read-kcore", true, func(hostileArgs) error {
		f, err := os.Open("/proc/kcore")
		if err != nil {
			return err
		}
		defer f.Close()
		if n, _ := f.Read(make([]byte, 64)); n == 0 {
			return unix.ENODATA // masked: reads nothing
		}
		return nil
	}},
	{"gain-capabilities", true, func(hostileArgs) error {
		// setuid-root and file capabilities cannot add to the bounding set:
		// report whether this process holds CAP_SYS_ADMIN at all.
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				m, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if m&(1<<unix.CAP_SYS_ADMIN) == 0 {
					return unix.EPERM
				}
			}
		}
		return nil
	}},
}

func hostileMain(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "hostile: want HOSTPID OTHERSOCK SAFEONLY")
		return 2
	}
	pid, _ := strconv.Atoi(args[0])
	a := hostileArgs{hostPid: pid, otherSock: args[1]}
	out := map[string]string{}
	for _, at := range attempts {
		if args[2] == "1" && !at.safe {
			continue
		}
		done := make(chan error, 1)
		go func() { done <- at.do(a) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			err = errors.New("timeout")
		}
		out[at.name] = errName(err)
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return 0
}

func writeFile(p, v string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// rewrite writes a control file's current value back to it: harmless if
// it succeeds, and refused in a sandbox.
func rewrite(p string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return writeFile(p, strings.TrimSpace(string(b)))
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	return err.Error()
}
