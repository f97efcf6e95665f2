package tcpfreeze

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// Target is one node: its network namespace and the processes whose
// descriptors may refer to its sockets.
type Target struct {
	Name  string // for logs and Socket.Node
	Netns string // path of its network namespace (/proc/PID/ns/net, /run/netns/X)
	Pids  []int
}

// Options bound a Frozen; the zero value is usable.
type Options struct {
	// Max is the most sockets one Frozen holds (default 256): each costs
	// an OS thread asleep in the kernel and a descriptor. Sockets over it
	// are left running, counted in Stats.Skipped and logged.
	Max int
	// LockTimeout is how long Add waits for the sockets it starts holding
	// to be locked (default 500 ms). One still waiting then (its owner
	// holds its lock a long time) stays in the Frozen as Pending.
	LockTimeout time.Duration
	// ReleaseTimeout is how long a release waits for a holding thread to
	// return (default 1 s); stragglers are cleaned up in the background.
	ReleaseTimeout time.Duration
	Logger         *slog.Logger
}

const (
	defaultMax            = 256
	defaultLockTimeout    = 500 * time.Millisecond
	defaultReleaseTimeout = time.Second
)

// Socket is one socket a Frozen holds.
type Socket struct {
	Node          string
	Local, Remote netip.AddrPort
	Inode         uint64
	Pid, Fd       int // where its descriptor was copied from
	Locked        bool
}

// Stats count what Freeze and Add found and did.
type Stats struct {
	InFlight    int           // sockets with data in flight across the emulator (not held before)
	Held        int           // locked
	Pending     int           // being locked when LockTimeout ran out (released with the others)
	Skipped     int           // over Options.Max: left running
	Unreachable int           // no descriptor in the targets' processes (orphaned, or another process's)
	Failed      int           // the descriptor could not be copied or the lock taken
	Took        time.Duration // wall time of the calls
}

func (s *Stats) add(o Stats) {
	s.InFlight += o.InFlight
	s.Held += o.Held
	s.Pending += o.Pending
	s.Skipped += o.Skipped
	s.Unreachable += o.Unreachable
	s.Failed += o.Failed
	s.Took += o.Took
}

// held is one socket being held: a copy of its descriptor and the
// goroutine (on its own OS thread) asleep in the kernel with its lock.
type held struct {
	Socket
	slot     int
	sfd      int        // closed once returned
	done     chan error // the Hold's return, once
	ret      error
	returned bool
	released bool
}

// Frozen is a set of sockets held locked. Its methods are safe for
// concurrent use.
type Frozen struct {
	o   Options
	log *slog.Logger

	// op serialises Add, ReleaseSocket and Release (lock order: op, then
	// mu), so that no socket is added while a release runs.
	op sync.Mutex
	// mu guards everything below; it is never held while waiting for the
	// kernel, so Sockets and Stats answer at once.
	mu     sync.Mutex
	arena  *linux.SockLockArena
	next   int // the next unused slot
	socks  []*held
	byIno  map[uint64]*held // the last hold of each socket (one released may be held again, in a new slot)
	st     Stats
	closed bool
}

// Freeze holds the lock of every TCP socket of targets that has data in
// flight through the emulator (see the package doc), at most Options.Max.
// It fails only if nothing can be held at all (no userfaultfd); sockets
// it could not reach are counted in Stats.
func Freeze(targets []Target, o Options) (*Frozen, error) {
	if o.Max <= 0 {
		o.Max = defaultMax
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = defaultLockTimeout
	}
	if o.ReleaseTimeout <= 0 {
		o.ReleaseTimeout = defaultReleaseTimeout
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a, err := linux.NewSockLockArena(o.Max)
	if err != nil {
		return nil, fmt.Errorf("freezing tcp: %w", err)
	}
	f := &Frozen{o: o, log: log, arena: a, byIno: map[uint64]*held{}}
	_, err = f.Add(targets)
	return f, err
}

// Add holds the sockets of targets that have data in flight and are not
// held (call it again while paused for those that started sending since;
// a socket ReleaseSocket released is held again, under a new id). It returns what this call did; errors are the tables it could
// not read (the other targets are still frozen).
func (f *Frozen) Add(targets []Target) (Stats, error) {
	f.op.Lock()
	defer f.op.Unlock()
	start := time.Now()
	var st Stats
	var errs []error
	var fresh []*held
	pidfds := map[int]int{}
	defer func() {
		for _, fd := range pidfds {
			linux.CloseFd(fd)
		}
	}()
	for _, t := range targets {
		ents, err := readTables(t.Netns)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", t.Name, err))
			continue
		}
		want := map[uint64]bool{}
		var cand []entry
		f.mu.Lock()
		closed := f.closed
		for _, e := range ents {
			if h := f.byIno[e.Inode]; !e.inFlight() || !e.throughEmulator() || h != nil && !h.released && e.Inode != 0 {
				continue
			}
			st.InFlight++
			if e.Inode == 0 {
				st.Unreachable++
				continue
			}
			if !want[e.Inode] {
				want[e.Inode] = true
				cand = append(cand, e)
			}
		}
		f.mu.Unlock()
		if closed {
			return st, ErrReleased
		}
		if len(cand) == 0 {
			continue
		}
		fds := findFds(t.Pids, want)
		for _, e := range cand {
			ref, ok := fds[e.Inode]
			if !ok {
				st.Unreachable++
				f.log.Debug("tcp freeze: no descriptor for a socket in flight", "node", t.Name, "local", e.Local, "remote", e.Remote, "inode", e.Inode)
				continue
			}
			h, err := f.start(t.Name, e, ref, pidfds)
			switch {
			case errors.Is(err, errFull):
				st.Skipped++
			case errors.Is(err, errGone):
				st.Unreachable++
			case err != nil:
				st.Failed++
				f.log.Warn("tcp freeze: cannot hold a socket", "node", t.Name, "local", e.Local, "remote", e.Remote, "err", err)
			default:
				fresh = append(fresh, h)
			}
		}
	}
	f.waitLocked(fresh, &st)
	st.Took = time.Since(start)
	if st.Skipped > 0 {
		f.log.Warn("tcp freeze: too many sockets in flight; some keep their timers running across the pause", "held_max", f.o.Max, "skipped", st.Skipped)
	}
	f.mu.Lock()
	f.st.add(st)
	f.mu.Unlock()
	return st, errors.Join(errs...)
}

var (
	errFull = errors.New("tcp freeze: every slot in use")
	errGone = errors.New("tcp freeze: descriptor gone")
)

// start copies the socket's descriptor and starts its holding thread.
func (f *Frozen) start(node string, e entry, ref fdRef, pidfds map[int]int) (*held, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, ErrReleased
	}
	if f.next >= f.arena.Slots() {
		f.mu.Unlock()
		return nil, errFull
	}
	slot := f.next
	f.next++ // a slot is used once, even if this start fails
	f.mu.Unlock()

	pidfd, ok := pidfds[ref.pid]
	if !ok {
		var err error
		if pidfd, err = linux.PidfdOpen(ref.pid); err != nil {
			return nil, errGone // it exited
		}
		pidfds[ref.pid] = pidfd
	}
	sfd, err := linux.PidfdGetfd(pidfd, ref.fd)
	if err != nil {
		return nil, errGone
	}
	// The descriptor may have been closed and reused since /proc said.
	if ino, err := linux.FdInode(sfd); err != nil || ino != e.Inode {
		linux.CloseFd(sfd)
		return nil, errGone
	}
	if err := f.arena.Arm(slot); err != nil {
		linux.CloseFd(sfd)
		return nil, err
	}
	h := &held{Socket: Socket{Node: node, Local: e.Local, Remote: e.Remote, Inode: e.Inode, Pid: ref.pid, Fd: ref.fd},
		slot: slot, sfd: sfd, done: make(chan error, 1)}
	a := f.arena
	go func() {
		// Never unlocked: the thread, asleep in the kernel for the pause
		// with every signal blocked, exits with this goroutine.
		runtime.LockOSThread()
		h.done <- a.Hold(slot, sfd)
	}()
	f.mu.Lock()
	f.socks = append(f.socks, h)
	f.byIno[e.Inode] = h
	f.mu.Unlock()
	return h, nil
}

// waitLocked waits until each of hs is locked, has failed, or
// LockTimeout has passed, and counts them in st.
func (f *Frozen) waitLocked(hs []*held, st *Stats) {
	if len(hs) == 0 {
		return
	}
	bySlot := map[int]*held{}
	for _, h := range hs {
		bySlot[h.slot] = h
	}
	deadline := time.Now().Add(f.o.LockTimeout)
	for len(bySlot) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		slots, err := f.arena.Locked(min(left, 5*time.Millisecond))
		if err != nil {
			f.log.Warn("tcp freeze: reading lock events", "err", err)
		}
		f.mu.Lock()
		for _, s := range slots {
			if h := bySlot[s]; h != nil {
				h.Locked = true
				st.Held++
				delete(bySlot, s)
			}
		}
		f.mu.Unlock()
		for s, h := range bySlot {
			select {
			case err := <-h.done:
				// It returned without sleeping: not locked.
				f.mu.Lock()
				h.ret, h.returned, h.released = err, true, true
				f.mu.Unlock()
				linux.CloseFd(h.sfd)
				st.Failed++
				delete(bySlot, s)
				f.log.Warn("tcp freeze: the lock was not taken", "node", h.Node, "local", h.Local, "remote", h.Remote, "err", err)
			default:
			}
		}
	}
	for _, h := range bySlot {
		st.Pending++
		f.log.Warn("tcp freeze: socket not locked in time (its owner holds it); it is released with the others", "node", h.Node, "local", h.Local, "remote", h.Remote)
	}
}

// Sockets lists the sockets held (locked or pending) and not released;
// the index of each is its id for ReleaseSocket.
func (f *Frozen) Sockets() map[int]Socket {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int]Socket{}
	for i, h := range f.socks {
		if !h.released {
			out[i] = h.Socket
		}
	}
	return out
}

// Stats is what every Freeze and Add call of f found and did.
func (f *Frozen) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

// ReleaseSocket releases socket id (from Sockets): the kernel then
// processes the packets that reached it meanwhile, then its deferred
// timers. Releasing twice is a no-op.
func (f *Frozen) ReleaseSocket(id int) error {
	f.mu.Lock()
	if id < 0 || id >= len(f.socks) {
		f.mu.Unlock()
		return fmt.Errorf("releasing socket %d: no such socket", id)
	}
	h := f.socks[id]
	f.mu.Unlock()
	f.op.Lock()
	defer f.op.Unlock()
	return f.release([]*held{h})
}

// Release releases every socket still held and frees what holding them
// took. It is idempotent; after it, Add fails with ErrReleased.
func (f *Frozen) Release() error {
	f.op.Lock()
	defer f.op.Unlock()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	hs := slices.Clone(f.socks)
	f.mu.Unlock()
	err := f.release(hs)
	// Every thread returned (or is left to the background reaper, which
	// then closes the arena): the arena can go.
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.socks {
		if !h.returned {
			return err
		}
	}
	if f.arena == nil {
		return err
	}
	cerr := f.arena.Close()
	f.arena = nil
	return errors.Join(err, cerr)
}

// release fills the pages of hs so that their setsockopts return, waits
// for them (ReleaseTimeout in all) and closes their descriptors.
func (f *Frozen) release(hs []*held) error {
	var errs []error
	var wait []*held
	f.mu.Lock()
	for _, h := range hs {
		if h.released {
			continue
		}
		h.released = true
		if err := f.arena.Release(h.slot); err != nil {
			errs = append(errs, fmt.Errorf("releasing socket %v->%v: %w", h.Local, h.Remote, err))
		}
		wait = append(wait, h)
	}
	f.mu.Unlock()
	timeout := time.NewTimer(f.o.ReleaseTimeout)
	defer timeout.Stop()
	for i, h := range wait {
		select {
		case err := <-h.done:
			f.returned(h, err)
		case <-timeout.C:
			f.log.Warn("tcp freeze: holding threads slow to return; cleaning up in the background", "left", len(wait)-i)
			go f.reap(wait[i:])
			return errors.Join(errs...)
		}
	}
	return errors.Join(errs...)
}

// returned records h's Hold return and closes its descriptor.
func (f *Frozen) returned(h *held, err error) {
	f.mu.Lock()
	h.ret, h.returned = err, true
	f.mu.Unlock()
	linux.CloseFd(h.sfd)
}

// reap waits for holding threads that outlived a release (stuck taking a
// lock their socket's owner held) and closes the arena once every thread
// of a released Frozen has returned.
func (f *Frozen) reap(hs []*held) {
	for _, h := range hs {
		f.returned(h, <-h.done)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed || f.arena == nil {
		return
	}
	for _, h := range f.socks {
		if !h.returned {
			return // another reaper finishes
		}
	}
	f.arena.Close()
	f.arena = nil
}
