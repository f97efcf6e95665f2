package live

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

// The QEMU guests of BenchmarkLiveVsKSMQEMU: PC (i440FX) TCG guests booting
// the host's Debian kernel with a small initramfs (busybox and the kernel's
// virtio-pci, virtio-blk and ext4 modules) that mounts a read-only ext4
// root on virtio-blk built from the host's own files: python3 with its
// standard library, redis-server, their shared libraries (ldd), busybox,
// /usr/share/doc and the man pages. Every guest boots the same image (as
// VMs cloned from one base image do) and runs a different workload of
// testdata/guest.py: a redis cache, a python web service, a build. Their
// memory is what those programs and the guest kernel hold: heaps, page
// cache of the files they read, the compile's output in tmpfs; nothing is
// filler.

//go:embed testdata/guest.py
var guestPy []byte

var guestRoles = []string{"cache", "app", "build"}

// guestModules are loaded by the initramfs in this order (modules.dep).
var guestModules = []string{
	"drivers/virtio/virtio_ring", "drivers/virtio/virtio", "drivers/virtio/virtio_pci_legacy_dev",
	"drivers/virtio/virtio_pci_modern_dev", "drivers/virtio/virtio_pci",
	"drivers/block/virtio_blk", "crypto/crc32c_generic", "lib/crc16", "fs/mbcache", "fs/jbd2/jbd2", "fs/ext4/ext4",
}

const guestInitramfsInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t devtmpfs dev /dev
for m in %s; do /bin/busybox insmod /lib/modules/$m.ko || echo "vmux-guest: insmod $m failed"; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do /bin/busybox sleep 0.1; i=$((i+1)); done
/bin/busybox mount -t ext4 -o ro /dev/vda /newroot || { echo "vmux-guest: no root"; /bin/busybox poweroff -f; }
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /vmux/init.sh
`

const guestRootInit = `#!/bin/sh
export PATH=/usr/bin:/bin LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu HOME=/tmp LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o size=50% tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up
set -- $(cat /proc/cmdline)
for a; do case $a in role=*) role=${a#role=};; seed=*) seed=${a#seed=};; esac; done
cd /tmp
exec python3 /vmux/guest.py $role $seed
`

// guestImage is what every guest boots.
type guestImage struct {
	kernel, initrd, disk string
}

func buildGuestImage(b *testing.B) guestImage {
	b.Helper()
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		b.Fatal("no kernel in /boot (make deps installs linux-image-amd64)")
	}
	kernel := kernels[len(kernels)-1]
	kver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	bb := testutil.MustHaveCommand(b, "busybox")
	for _, c := range []string{"cpio", "mke2fs", "ldd"} {
		testutil.MustHaveCommand(b, c)
	}
	py, redis := "/usr/bin/python3.11", "/usr/bin/redis-server" // Debian's (a PATH may hold other pythons)
	dir := b.TempDir()
	run := func(name string, args ...string) {
		b.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}

	// the initramfs: busybox and the modules
	ird := filepath.Join(dir, "initramfs")
	os.MkdirAll(filepath.Join(ird, "bin"), 0o755)
	os.MkdirAll(filepath.Join(ird, "lib", "modules"), 0o755)
	run("cp", bb, filepath.Join(ird, "bin", "busybox"))
	var names []string
	for _, m := range guestModules {
		src := filepath.Join("/lib/modules", kver, "kernel", m+".ko")
		run("cp", src, filepath.Join(ird, "lib", "modules", filepath.Base(m)+".ko"))
		names = append(names, filepath.Base(m))
	}
	if err := os.WriteFile(filepath.Join(ird, "init"), []byte(fmt.Sprintf(guestInitramfsInit, strings.Join(names, " "))), 0o755); err != nil {
		b.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	run("sh", "-c", "cd "+ird+" && find . | cpio -o -H newc --quiet > "+initrd)

	// the root: merged /usr as on the host
	root := filepath.Join(dir, "root")
	for _, d := range []string{"usr/bin", "usr/lib/x86_64-linux-gnu", "usr/lib64", "usr/share/man", "etc", "proc", "sys", "dev", "tmp", "run", "vmux"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		target := "usr/" + l
		if l == "sbin" {
			target = "usr/bin"
		}
		os.Symlink(target, filepath.Join(root, l))
	}
	run("cp", bb, filepath.Join(root, "usr/bin/busybox"))
	applets, err := exec.Command(bb, "--list").Output()
	if err != nil {
		b.Fatal(err)
	}
	for _, a := range strings.Fields(string(applets)) {
		os.Symlink("busybox", filepath.Join(root, "usr/bin", a))
	}
	run("cp", py, filepath.Join(root, "usr/bin/python3.11"))
	os.Remove(filepath.Join(root, "usr/bin/python3"))
	os.Symlink("python3.11", filepath.Join(root, "usr/bin/python3"))
	run("cp", "-L", redis, filepath.Join(root, "usr/bin/redis-server"))
	run("sh", "-c", "cd /usr/lib && tar cf - --exclude=__pycache__ --exclude=config-3.11-x86_64-linux-gnu --exclude=dist-packages python3.11 | tar xf - -C "+root+"/usr/lib")
	run("cp", "-a", "/usr/share/doc", filepath.Join(root, "usr/share/doc"))
	for _, m := range []string{"man1", "man3", "man5", "man7", "man8"} {
		run("cp", "-a", filepath.Join("/usr/share/man", m), filepath.Join(root, "usr/share/man", m))
	}
	// the shared libraries of the binaries and of python's extension modules
	objs := []string{py, redis}
	exts, _ := filepath.Glob("/usr/lib/python3.11/lib-dynload/*.so")
	objs = append(objs, exts...)
	libs := map[string]bool{}
	for _, o := range objs {
		out, _ := exec.Command("ldd", o).Output()
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			for _, p := range f {
				if strings.HasPrefix(p, "/") {
					libs[p] = true
				}
			}
		}
	}
	for l := range libs {
		dst := filepath.Join(root, "usr/lib/x86_64-linux-gnu", filepath.Base(l))
		if strings.HasPrefix(l, "/lib64/") {
			dst = filepath.Join(root, "usr/lib64", filepath.Base(l))
		}
		run("cp", "-L", l, dst)
	}
	for _, f := range []string{"passwd", "group", "hosts", "nsswitch.conf"} {
		if data, err := os.ReadFile(filepath.Join("/etc", f)); err == nil {
			os.WriteFile(filepath.Join(root, "etc", f), data, 0o644)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "vmux/guest.py"), guestPy, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "vmux/init.sh"), []byte(guestRootInit), 0o755); err != nil {
		b.Fatal(err)
	}
	disk := filepath.Join(dir, "root.ext4")
	var size int64
	filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
		if err == nil {
			size += fi.Size() + 4096
		}
		return nil
	})
	run("mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal,^metadata_csum", "-E", "root_owner=0:0", "-d", root, disk,
		strconv.FormatInt(size*5/4>>20+64, 10)+"M")
	os.RemoveAll(root) // the image has it
	os.RemoveAll(ird)
	return guestImage{kernel: kernel, initrd: initrd, disk: disk}
}

// startGuests boots n guests of ramMB each, in parallel, the i-th running
// guestRoles[i%3] seeded with i+1, each its own trust domain; it returns
// when all printed that they are loaded.
func startGuests(b *testing.B, n int, ramMB int) []*benchProc {
	qemu := testutil.MustHaveCommand(b, "qemu-system-x86_64")
	img := buildGuestImage(b)
	var ps []*benchProc
	var waits []func()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		role := guestRoles[i%len(guestRoles)]
		p, wait := startBenchAsync(b, fmt.Sprintf("guest%d-%s", i, role), fmt.Sprintf("guest%d", i), "vmux-guest-ready", qemu,
			"-M", "pc", "-accel", "tcg", "-m", strconv.Itoa(ramMB), "-kernel", img.kernel, "-initrd", img.initrd,
			"-append", fmt.Sprintf("console=ttyS0 %s role=%s seed=%d", guestKernelLog(), role, i+1),
			"-drive", "id=root,file="+img.disk+",format=raw,if=none,readonly=on", "-device", "virtio-blk-pci,drive=root",
			"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio")
		ps, waits = append(ps, p), append(waits, wait)
	}
	for i, w := range waits {
		w()
		b.Logf("%s ready after %v", ps[i].name, time.Since(t0).Round(time.Second))
	}
	return ps
}

// BenchmarkGuestBoot boots the guests of BenchmarkLiveVsKSMQEMU and
// reports how long they take to load and what they hold: a check of the
// guests on their own (VMUX_BENCH_GUESTS, default 3).
func BenchmarkGuestBoot(b *testing.B) {
	mustLiveBench(b)
	n := 3
	if v, err := strconv.Atoi(os.Getenv("VMUX_BENCH_GUESTS")); err == nil && v > 0 {
		n = v
	}
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		ps := startGuests(b, n, guestRAM)
		b.ReportMetric(time.Since(t0).Seconds(), "s-to-ready")
		for _, p := range ps {
			pi, _ := readProc(p.pid())
			b.Logf("%s: RSS %d MiB", p.name, pi.rss>>20)
		}
		b.ReportMetric(float64(rssSum(ps))/(1<<20), "rss-MiB")
	}
}

const guestRAM = 512

// guestKernelLog is "quiet" unless VMUX_GUEST_DEBUG=1 (the guests' kernel
// messages then show in a failed start's last lines).
func guestKernelLog() string {
	if os.Getenv("VMUX_GUEST_DEBUG") == "1" {
		return "loglevel=7"
	}
	return "quiet"
}
