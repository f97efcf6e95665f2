// Package server is the disk model's FUSE server (package diskmodel has
// the mechanism in a nutshell) and its reexec role.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/diecast/diskmodel"
)

// Stats count what a server did.
type Stats struct {
	Ops     int64         // reads, writes and fsyncs served
	Service time.Duration // their backing calls' total duration
	Hold    time.Duration // total time replies were held
	// ServiceP50 is the median service time of the last ringSize ops.
	ServiceP50 time.Duration
	// Recent are the service times of the last ringSize ops, in order
	// while no more than ringSize were served.
	Recent []time.Duration `json:",omitempty"`
}

// ringSize bounds the service times kept for the median.
const ringSize = 4096

// server is one mounted model: the backing root, the model, the node's
// time, the waiter.
type server struct {
	// m is the model in force (calibration swaps it).
	m  atomic.Pointer[diskmodel.Model]
	nt diskmodel.NodeTime
	w  *diskmodel.Waiter
	// rd, wr pace reads and writes at the model's rates.
	rd, wr *diskmodel.Limiter
	// noNowait is set once the backing file system refused RWF_NOWAIT;
	// calibrating while the server measures its own round trip (no
	// holds, no pacing).
	noNowait, calibrating atomic.Bool
	// counters (atomic)
	ops, service, hold atomic.Int64
	// mu guards ring, the last service times (ops % ringSize is next),
	// and calib, where calibration collects them in order when set.
	mu    sync.Mutex
	ring  []time.Duration
	calib *[]time.Duration
}

func (s *server) stats() Stats {
	s.mu.Lock()
	r := append([]time.Duration(nil), s.ring...)
	s.mu.Unlock()
	st := Stats{Ops: s.ops.Load(), Service: time.Duration(s.service.Load()), Hold: time.Duration(s.hold.Load())}
	st.Recent = append([]time.Duration(nil), r...)
	if len(r) > 0 {
		slices.Sort(r)
		st.ServiceP50 = r[len(r)/2]
	}
	return st
}

// timed runs a backing call and holds its return until the node's time
// has advanced by the call's duration since it began (Model.Deadline):
// whatever k is meanwhile, and not while the clock is paused.
func (s *server) timed(call func() syscall.Errno) syscall.Errno {
	v0, t0 := s.begin()
	errno := call()
	s.finish(v0, t0)
	return errno
}

// begin notes when a backing call begins, in the node's time and in real
// time.
func (s *server) begin() (int64, time.Time) {
	v0, _ := s.nt.Now()
	return v0, time.Now()
}

// finish holds the reply to the call begun at v0, t0 (begin), which has
// just returned, and counts it.
func (s *server) finish(v0 int64, t0 time.Time) {
	svc := time.Since(t0)
	now, k := s.nt.Now()
	var h time.Duration
	if due := s.m.Load().Deadline(v0, svc, k); due > now && !s.calibrating.Load() {
		s.nt.Until(s.w, due)
		h = time.Since(t0) - svc
	}
	i := s.ops.Add(1) - 1
	s.service.Add(int64(svc))
	s.mu.Lock()
	if s.calib != nil {
		*s.calib = append(*s.calib, svc)
	}
	if len(s.ring) < ringSize {
		s.ring = append(s.ring, svc)
	} else {
		s.ring[i%ringSize] = svc
	}
	s.mu.Unlock()
	s.hold.Add(int64(h))
}

// pace waits until the limiter lets an operation of n bytes through, in
// the node's time.
func (s *server) pace(l *diskmodel.Limiter, n int) {
	if s.calibrating.Load() {
		return
	}
	v, _ := s.nt.Now()
	start := l.Reserve(time.Unix(0, v), n).UnixNano()
	if start > v {
		s.nt.Until(s.w, start)
	}
}

// node is a loopback node whose files are timed.
type node struct {
	*fs.LoopbackNode
	s *server
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
)

// WrapChild makes every node of the tree a timed one.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), s: n.s}
}

// Open opens the backing file (O_DIRECT passes through) and times it.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, ff, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return n.wrap(fh, flags, ff)
}

// Create creates the backing file and times it.
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	in, fh, ff, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	f, ff, errno := n.wrap(fh, flags, ff)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return in, f, ff, 0
}

func (n *node) wrap(fh fs.FileHandle, flags, ff uint32) (fs.FileHandle, uint32, syscall.Errno) {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return nil, 0, syscall.EIO
	}
	fd, ok := lf.PassthroughFd()
	if !ok {
		lf.Release(context.Background())
		return nil, 0, syscall.EBADF
	}
	f := &file{LoopbackFile: lf, fd: fd, s: n.s, direct: flags&syscall.O_DIRECT != 0}
	if f.direct {
		ff |= fuse.FOPEN_DIRECT_IO
	}
	return f, ff, 0
}

// file is a loopback file whose reads, writes and fsyncs are timed.
type file struct {
	*fs.LoopbackFile
	fd     int
	direct bool
	s      *server
}

var (
	_ fs.FileReader  = (*file)(nil)
	_ fs.FileWriter  = (*file)(nil)
	_ fs.FileFsyncer = (*file)(nil)
)

// directAlign is the alignment of buffers for O_DIRECT backing calls.
const directAlign = 4096

// maxIO bounds one read or write (go-fuse's MaxWrite and the kernel's
// max_read follow it).
const maxIO = 1 << 20

var alignedPool = sync.Pool{New: func() any {
	b := make([]byte, maxIO+directAlign)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
	if off != 0 {
		off = directAlign - off
	}
	a := b[off : off+maxIO : off+maxIO]
	return &a
}}

// Read reads into buf (through an aligned buffer for O_DIRECT). Only the
// system call is inside the timed window.
func (f *file) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if len(buf) > maxIO {
		buf = buf[:maxIO]
	}
	dst := buf
	if f.direct {
		a := alignedPool.Get().(*[]byte)
		defer alignedPool.Put(a)
		dst = (*a)[:len(buf)]
	}
	if !f.direct && !f.s.noNowait.Load() {
		// A read the backing page cache holds is the target's cache
		// hit: not paced (and timed as the copy it is). Only a miss,
		// which goes to the device, waits for the rates, as blkio
		// throttles a buffered read that misses. (A short read may be
		// the end of the file or a partial hit: read again, paced.)
		v0, t0 := f.s.begin()
		n, err := rawPreadNowait(f.fd, dst, off)
		if err == syscall.EOPNOTSUPP {
			f.s.noNowait.Store(true) // the backing file system has no RWF_NOWAIT
		}
		if err != syscall.EOPNOTSUPP && err != syscall.EAGAIN && (err != nil || n == 0 || n == len(dst)) {
			f.s.finish(v0, t0)
			if err != nil {
				return nil, fs.ToErrno(err)
			}
			return fuse.ReadResultData(buf[:n]), 0
		}
	}
	f.s.pace(f.s.rd, len(dst))
	var n int
	errno := f.s.timed(func() syscall.Errno {
		var err error
		n, err = rawPread(f.fd, dst, off)
		return fs.ToErrno(err)
	})
	if errno != 0 {
		return nil, errno
	}
	if f.direct {
		copy(buf, dst[:n])
	}
	return fuse.ReadResultData(buf[:n]), 0
}

// Write writes data (through an aligned buffer for O_DIRECT).
func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	src := data
	if f.direct && len(data) <= maxIO {
		a := alignedPool.Get().(*[]byte)
		defer alignedPool.Put(a)
		src = (*a)[:copy(*a, data)]
	}
	if f.direct {
		// blkio v1 throttles direct I/O, not buffered writes (written
		// back later, by the kernel): the same here
		f.s.pace(f.s.wr, len(src))
	}
	var n int
	errno := f.s.timed(func() syscall.Errno {
		var err error
		n, err = syscall.Pwrite(f.fd, src, off)
		return fs.ToErrno(err)
	})
	return uint32(max(n, 0)), errno
}

// Fsync syncs the backing file (fdatasync when asked).
func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return f.s.timed(func() syscall.Errno {
		if flags&1 != 0 {
			return fs.ToErrno(syscall.Fdatasync(f.fd))
		}
		return fs.ToErrno(syscall.Fsync(f.fd))
	})
}

// Serve serves the model on dev, a FUSE connection already mounted
// (MountFuse), passing through to the directory dir (a descriptor opened
// before the mount covered it). It returns when the file system is
// unmounted or its connection aborted, with what it served.
func Serve(dev, dir *os.File, m diskmodel.Model, log *slog.Logger) (Stats, error) {
	return ServeConfig(Config{Dev: dev, Dir: dir, Model: m, Log: log})
}

// Config is what ServeConfig serves.
type Config struct {
	// Dev is the mounted FUSE connection, Dir the backing directory.
	Dev, Dir *os.File
	Model    diskmodel.Model
	// Mount is where the connection is mounted, as this process sees it:
	// if set, the server measures the FUSE round trip through it first
	// and credits its first quartile as the model's Lead.
	Mount string
	// Ready, if set, receives one line once the server serves (and has
	// calibrated): "ok lead=NS\n"; then it is closed.
	Ready *os.File
	// Time is the node's time; nil: real time slowed by Model.Factor.
	Time diskmodel.NodeTime
	Log  *slog.Logger
}

// ServeConfig is Serve with calibration and a readiness report.
func ServeConfig(c Config) (Stats, error) {
	dev, dir, m, log := c.Dev, c.Dir, c.Model, c.Log
	if err := m.Validate(); err != nil {
		return Stats{}, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(dir.Fd()), &st); err != nil {
		return Stats{}, fmt.Errorf("stat backing directory: %w", &os.PathError{Op: "fstat", Path: dir.Name(), Err: err})
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return Stats{}, fmt.Errorf("%w: backing %s is not a directory", diskmodel.ErrBadArgs, dir.Name())
	}
	nt := c.Time
	if nt == nil {
		nt = diskmodel.NewFixedTime(m.Factor)
	}
	// the kernel's slice, in the node's time
	s := &server{nt: nt, w: diskmodel.NewWaiter(),
		rd: diskmodel.NewLimiter(m.ReadIOPS, m.ReadBps, diskmodel.ThrottleSlice), wr: diskmodel.NewLimiter(m.WriteIOPS, m.WriteBps, diskmodel.ThrottleSlice)}
	s.m.Store(&m)
	// The loopback works by path: the descriptor's magic link reaches the
	// directory under the mount, which no path in this namespace does.
	lr := &fs.LoopbackRoot{Path: fmt.Sprintf("/proc/self/fd/%d", dir.Fd()), Dev: st.Dev}
	root := &node{LoopbackNode: &fs.LoopbackNode{RootData: lr}, s: s}
	lr.RootNode = root
	zero := time.Duration(0)
	opts := &fs.Options{
		// No attribute or entry caching: other nodes may change the
		// same backing directory.
		EntryTimeout: &zero, AttrTimeout: &zero, NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName: "vmux-disk", Name: "vmux-disk", MaxWrite: maxIO, MaxReadAhead: maxIO,
			DisableXAttrs: true, MaxBackground: 64,
		},
	}
	srv, err := fs.Mount(fmt.Sprintf("/dev/fd/%d", dev.Fd()), root, opts)
	if err != nil {
		return Stats{}, fmt.Errorf("serve disk model: %w", err)
	}
	if c.Mount != "" {
		lead, err := s.calibrate(dir, c.Mount)
		if err != nil {
			return Stats{}, err // the caller's exit aborts the connection
		}
		m.Lead = lead
		s.m.Store(&m)
	}
	log.Info("disk model serving", "factor", m.Factor, "lead", m.Lead)
	if c.Ready != nil {
		_, err := fmt.Fprintf(c.Ready, "ok lead=%d\n", int64(m.Lead))
		c.Ready.Close()
		if err != nil {
			return Stats{}, fmt.Errorf("report disk model ready: %w", err)
		}
	}
	srv.Wait()
	// The server and the loopback use the descriptors by number: they
	// must not be finalized (closed) while it serves.
	runtime.KeepAlive(dev)
	runtime.KeepAlive(dir)
	return s.stats(), nil
}

// rawPreadNowait is preadv2(2) with RWF_NOWAIT: what the page cache holds
// now, EAGAIN if any of it would have to wait for the device.
func rawPreadNowait(fd int, b []byte, off int64) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	iov := syscall.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	r, _, e := syscall.RawSyscall6(unix.SYS_PREADV2, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, uintptr(off), uintptr(off>>32), unix.RWF_NOWAIT)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawPread is pread(2) without the Go scheduler's syscall hand-off, so
// the measured time is the call's and not a wait for a processor after it.
func rawPread(fd int, b []byte, off int64) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall6(syscall.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(off), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
