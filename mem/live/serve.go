package live

import (
	"encoding/binary"
	"errors"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem"
)

// How a fault was served, for the latency figures.
const (
	mechZero       = iota // a held zero page
	mechShared            // a page whose content other pages share
	mechPatched           // rebuilt from a patch over its reference
	mechCompressed        // decompressed
	mechRaw               // copied
	mechStaged            // taken back from the staging area (in flight)
	mechFirst             // a page never held (its first touch): zero fill
	nMech
)

var mechNames = [nMech]string{"zero", "shared", "patched", "compressed", "raw", "staged", "first-touch"}

// command is work for a target's serve loop; it returns true to end it.
type command func() (exit bool)

var zeroPage = make([]byte, pageSize)

// startLoop starts the goroutine that serves the target's faults and
// events. All copies into the process and all changes of a held page back
// to not held happen there, in the order the uffd reports things: that is
// what makes a page removed by the process (madvise, munmap) read as zero
// afterwards and never as its old content.
func (t *target) startLoop() error {
	w, err := linux.NewWaker()
	if err != nil {
		return err
	}
	t.wake = w
	t.loopDone = make(chan struct{})
	go t.serve()
	return nil
}

// post queues c for the serve loop (dropped if the loop has ended).
func (t *target) post(c command) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.wake == nil {
		return
	}
	t.cmds = append(t.cmds, c)
	_ = t.wake.Wake()
}

// kick wakes the serve loop (to look at its descriptors again).
func (t *target) kick() { t.post(func() bool { return false }) }

// do runs c on the serve loop and waits for it; false if the loop ended.
func (t *target) do(c func()) bool {
	done := make(chan struct{})
	t.post(func() bool { c(); close(done); return false })
	select {
	case <-done:
		return true
	case <-t.loopDone:
		return false
	}
}

func (t *target) serve() {
	defer func() {
		close(t.loopDone)
		go func() {
			// the loop was the uffd's last reader; the clock may still be
			// using the other files
			t.use.Lock()
			t.closeFiles()
			t.use.Unlock()
		}()
	}()
	buf := make([]byte, 64*linux.UffdMsgSize)
	page := make([]byte, pageSize)
	ready := make([]bool, 3)
	var retry []linux.UffdMsg
	for {
		fds := []int{t.uffd.Fd(), t.wake.Fd()}
		t.mu.Lock()
		if t.pidfd >= 0 {
			fds = append(fds, t.pidfd)
		}
		t.mu.Unlock()
		wait := time.Duration(-1)
		if len(retry) > 0 {
			wait = 100 * time.Microsecond // EAGAIN: events pending, try again soon
		}
		if err := linux.PollReadable(fds, wait, ready[:len(fds)]); err != nil {
			t.e.log.Error("polling uffd", "target", t.String(), "err", err)
			time.Sleep(time.Millisecond)
		}
		if ready[1] {
			t.wake.Drain()
			if t.runCmds() {
				return
			}
		}
		// every message first (events before the faults they may block)
		for {
			n, err := t.uffd.ReadMsgs(buf)
			if err != nil {
				t.e.log.Error("reading uffd", "target", t.String(), "err", err)
				break
			}
			if n == 0 {
				break
			}
			for off := 0; off+linux.UffdMsgSize <= n; off += linux.UffdMsgSize {
				m, err := linux.ParseUffdMsg(buf[off:])
				if err != nil {
					t.e.log.Warn("uffd message", "target", t.String(), "err", err)
					continue
				}
				if m.Event == linux.UffdEventPagefault {
					retry = append(retry, m)
				} else {
					t.event(m)
				}
			}
		}
		left := retry[:0]
		for _, m := range retry {
			if !t.fault(m, page) {
				left = append(left, m)
			}
		}
		retry = left
		if len(fds) > 2 && ready[2] && len(retry) == 0 {
			t.exited()
			return
		}
	}
}

func (t *target) runCmds() bool {
	t.mu.Lock()
	cmds := t.cmds
	t.cmds = nil
	t.mu.Unlock()
	for i, c := range cmds {
		if c() {
			// keep the rest for whoever looks (nobody: the loop ends)
			_ = cmds[i+1:]
			return true
		}
	}
	return false
}

// fault serves one page fault; false means try again later (EAGAIN).
func (t *target) fault(m linux.UffdMsg, page []byte) bool {
	t0 := time.Now()
	addr := m.Address &^ (pageSize - 1)
	write := m.Flags&linux.UffdPagefaultWrite != 0
	t.mu.Lock()
	slot, staged := t.pending[addr]
	copied := t.inherited[addr]
	id := t.pt.held(addr)
	t.mu.Unlock()
	mech := mechFirst
	var err error
	switch {
	case copied != nil:
		err = t.copyIn(addr, copied, write)
		mech = mechStaged
	case staged && t.slotPresent(slot):
		// moved out but not yet stored: the staging slot has it
		if _, err = linux.ReadProcessMemory(t.pid, slot, page); err == nil {
			err = t.copyIn(addr, page, write)
		}
		mech = mechStaged
	case id == ZeroCID:
		err = t.zeroFill(addr, write)
		mech = mechZero
	case id != NoCID:
		mech = t.mechOf(id)
		if err = t.e.pool.Decode(id, page); err != nil {
			// cannot happen unless the store is corrupt; never zero-fill:
			// leave the thread waiting and say so loudly
			t.e.log.Error("cannot rebuild a held page; the faulting thread waits", "target", t.String(), "addr", addr, "err", err)
			return true
		}
		err = t.copyIn(addr, page, write)
	default:
		err = t.zeroFill(addr, write)
	}
	if errors.Is(err, syscall.EAGAIN) {
		return false
	}
	if err != nil && !errors.Is(err, syscall.EEXIST) {
		if !errors.Is(err, syscall.ESRCH) {
			t.e.log.Warn("serving a fault", "target", t.String(), "addr", addr, "err", err)
		}
		return true
	}
	epoch := t.e.epoch.Load()
	t.mu.Lock()
	if staged && t.pending[addr] == slot {
		delete(t.pending, addr)
	}
	if copied != nil {
		delete(t.inherited, addr)
	}
	back := id != NoCID && t.pt.held(addr) == id
	if back {
		c, i := t.pt.at(addr, true, epoch)
		// came back sooner than it should have stayed cold: hotter
		if epoch-c.seen[i] < t.threshold<<c.heat[i] && c.heat[i] < maxHeat {
			c.heat[i]++
			t.st.cameBack++
		}
		c.seen[i] = epoch
		t.pt.set(addr, NoCID, epoch)
		t.st.held--
		t.st.faults++
	} else if id == NoCID && !staged && copied == nil {
		t.st.zeroFills++
	}
	t.st.hist[mech].add(time.Since(t0))
	t.mu.Unlock()
	if back {
		t.e.journal.Unmap(t.id, addr)
		t.e.pool.Release(id)
	}
	return true
}

// mechOf says how content id is served.
func (t *target) mechOf(id CID) int {
	if t.e.pool.Holders(id) > 1 {
		return mechShared
	}
	switch t.e.pool.Kind(id) {
	case mem.KindPatched:
		return mechPatched
	case mem.KindCompressed:
		return mechCompressed
	}
	return mechRaw
}

// copyIn fills addr with page; a read fault's page is write-protected so
// that the aging clock sees its next write.
func (t *target) copyIn(addr uint64, page []byte, write bool) error {
	mode := uint64(linux.UffdCopyWP)
	if write {
		mode = 0
	}
	_, err := t.uffd.Copy(addr, page, mode)
	return err
}

func (t *target) zeroFill(addr uint64, write bool) error {
	if write {
		return t.copyIn(addr, zeroPage, true)
	}
	_, err := t.uffd.Zeropage(addr, pageSize, 0)
	return err
}

// slotPresent reports whether a staging slot holds a page (reading a slot
// that does not would fault into this very loop).
func (t *target) slotPresent(slot uint64) bool {
	if t.pagemap == nil {
		return false
	}
	var b [8]byte
	if _, err := t.pagemap.ReadAt(b[:], int64(slot/pageSize*8)); err != nil {
		return false
	}
	return binary.LittleEndian.Uint64(b[:])&(1<<63) != 0
}

// ours reports whether [start, end) lies in the engine's own areas.
func (t *target) ours(start, end uint64) bool {
	in := func(base, n uint64) bool { return start >= base && end <= base+n }
	return in(t.staging, stagingPages*pageSize) || in(t.ctl, ctlPages*pageSize)
}

// event handles a non-fault message.
func (t *target) event(m linux.UffdMsg) {
	switch m.Event {
	case linux.UffdEventRemove, linux.UffdEventUnmap:
		if !t.ours(m.From, m.To) {
			t.dropRange(m.From, m.To, m.Event == linux.UffdEventUnmap)
		}
	case linux.UffdEventRemap:
		t.remap(m.From, m.To, m.Len)
	case linux.UffdEventFork:
		t.e.fork(t, m.ForkFd)
	}
}

// dropRange forgets the held pages of a range the process discarded: they
// read as zero now, so their contents are released.
func (t *target) dropRange(start, end uint64, unmapped bool) {
	var ids []CID
	t.mu.Lock()
	epoch := t.e.epoch.Load()
	t.pt.each(start, end, func(a uint64, id CID) {
		ids = append(ids, id)
		t.pt.set(a, NoCID, epoch)
	})
	for a := range t.pending {
		if a >= start && a < end {
			delete(t.pending, a)
		}
	}
	for a := range t.inherited {
		if a >= start && a < end {
			delete(t.inherited, a)
		}
	}
	if unmapped {
		t.ranges = t.ranges.remove(start, end)
		t.pt.drop(start, end)
	}
	t.st.held -= int64(len(ids))
	t.st.removed += int64(len(ids))
	t.mu.Unlock()
	if len(ids) > 0 {
		t.e.journal.Remove(t.id, start, end)
	}
	for _, id := range ids {
		t.e.pool.Release(id)
	}
}

// remap follows an mremap: held pages and aging state move with it.
func (t *target) remap(from, to, n uint64) {
	t.mu.Lock()
	type moved struct {
		addr       uint64
		id         CID
		seen       uint32
		heat       uint8
		hadPending bool
		slot       uint64
	}
	var ms []moved
	epoch := t.e.epoch.Load()
	for a := from; a < from+n; a += pageSize {
		c, i := t.pt.at(a, false, 0)
		slot, p := t.pending[a]
		if c == nil && !p {
			continue
		}
		m := moved{addr: to + (a - from), hadPending: p, slot: slot}
		if c != nil {
			m.id, m.seen, m.heat = c.held[i], c.seen[i], c.heat[i]
			if m.id != NoCID {
				t.pt.set(a, NoCID, epoch)
			}
		}
		delete(t.pending, a)
		ms = append(ms, m)
	}
	for _, m := range ms {
		c, i := t.pt.at(m.addr, true, epoch)
		c.seen[i], c.heat[i] = m.seen, m.heat
		if m.id != NoCID {
			t.pt.set(m.addr, m.id, epoch)
		}
		if m.hadPending {
			t.pending[m.addr] = m.slot
		}
	}
	t.ranges = t.ranges.remove(from, from+n).add(to, to+n)
	t.mu.Unlock()
	t.e.journal.Remap(t.id, from, to, n)
}

// exited releases everything a process that exited held.
func (t *target) exited() {
	t.mu.Lock()
	var ids []CID
	t.pt.each(0, ^uint64(0), func(a uint64, id CID) { ids = append(ids, id) })
	t.pt = newPageTable()
	t.pending = map[uint64]uint64{}
	t.inherited = nil
	t.st.held = 0
	t.gone = true
	t.mu.Unlock()
	for _, id := range ids {
		t.e.pool.Release(id)
	}
	t.e.journal.TargetGone(t.id)
	if err := t.e.journal.Flush(); err != nil {
		t.e.log.Error("journal", "err", err)
	}
	t.e.log.Info("process exited; its pages are released", "target", t.String(), "pages", len(ids))
	t.e.removeTarget(t)
}
