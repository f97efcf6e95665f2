package live

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/ptrace"
)

// A fork of a managed process copies its page tables: the pages the
// engine holds are missing in the child too, and the kernel gives the
// child its own userfaultfd (UFFD_EVENT_FORK, installed in the engine).
// The child is a new target holding the same contents (one more hold on
// each), so a write in either changes that process alone: each gets its
// own copy on its own fault. The fork event does not say which process
// the child is; the engine finds it by writing a nonce through the new
// uffd into the child's probe slot and looking for it among the parent's
// children. Then it installs the child's uffd into the child, so that the
// child's faults wait, rather than read zeros, if the engine dies, and
// closes the parent's uffd the child inherited (otherwise the parent's
// registration would outlive a stop).

const identifyTimeout = 3 * time.Second

// fork handles UFFD_EVENT_FORK of parent p (on p's serve loop).
func (e *Engine) fork(p *target, fd int) {
	c := &target{e: e, name: p.name, domain: p.domain, group: p.group, uffd: linux.NewUffd(fd),
		remoteFd: -1, pidfd: -1, staging: p.staging, ctl: p.ctl, pt: newPageTable(),
		pending: map[uint64]uint64{}, dirtyStg: true}
	e.mu.Lock()
	c.id = e.nextID
	e.nextID++
	e.mu.Unlock()
	p.mu.Lock()
	for k, ch := range p.pt.chunks {
		cc := *ch
		c.pt.chunks[k] = &cc
		for _, id := range ch.held {
			if id != NoCID {
				e.pool.Acquire(id)
			}
		}
	}
	c.inherited = map[uint64][]byte{}
	for a, s := range p.pending {
		// The parent's slot is intact while its lock is held (it is freed
		// only after the commit, which takes the lock). A slot still empty
		// means the page had not moved at the fork: the child has it.
		if p.slotPresent(s) {
			b := make([]byte, pageSize)
			if _, err := linux.ReadProcessMemory(p.pid, s, b); err == nil {
				c.inherited[a] = b
			}
		}
	}
	if len(c.inherited) > 0 {
		p.forks = append(p.forks, c)
	}
	c.ranges = append(spans(nil), p.ranges...)
	c.st.held = p.st.held
	c.threshold = p.threshold
	parentPid, parentFd := p.pid, p.remoteFd
	held := c.st.held
	p.mu.Unlock()
	e.journal.Fork(p.id, c.id)
	e.addTarget(c)
	if err := c.startLoop(); err != nil {
		e.log.Error("fork child: cannot serve its faults", "parent", p.String(), "err", err)
		return
	}
	e.log.Info("process forked; serving the child", "parent", p.String(), "pages", held)
	go e.identify(c, parentPid, parentFd)
}

// identify finds the process a fork child target is, then makes its uffd
// survive the engine.
func (e *Engine) identify(c *target, parent, parentFd int) {
	probe := c.staging + maxBatch*pageSize
	page := make([]byte, pageSize)
	rand.Read(page[:32])
	var err error
	for i := 0; i < 100; i++ {
		if _, err = c.uffd.Copy(probe, page, 0); !errors.Is(err, syscall.EAGAIN) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	pid := 0
	if err == nil {
		pid = findProbe(parent, probe, page[:32])
	}
	if pid == 0 {
		// gone already (exited, or exec'd: its memory is no more)
		e.log.Info("fork child left before it was found; its pages are released", "parent pid", parent, "err", err)
		c.post(func() bool { c.exited(); return true })
		return
	}
	pi, err := readProc(pid)
	if err != nil {
		c.post(func() bool { c.exited(); return true })
		return
	}
	c.mu.Lock()
	c.pid, c.start, c.rssBefore = pid, pi.start, 0
	err = c.open()
	c.mu.Unlock()
	if err != nil {
		c.post(func() bool { c.exited(); return true })
		return
	}
	err = e.onInjector(func() error {
		return e.inject(c, func(a *ptrace.Attached) error {
			rfd, err := ptrace.InstallFD(a.Injector, pid, c.uffd.Fd())
			if err != nil {
				return err
			}
			c.mu.Lock()
			c.remoteFd = rfd
			c.mu.Unlock()
			if parentFd >= 0 && isUffdIn(pid, parentFd) {
				a.Call(sysClose, uint64(parentFd))
			}
			// the parent's agent thread was not copied: the child gets its own
			if ag, err := a.StartAgent(pid, c.ctl+movePages*pageSize); err == nil {
				c.agent = ag
			} else {
				e.log.Warn("fork child: no agent thread", "target", c.String(), "err", err)
			}
			return nil
		})
	})
	if err != nil {
		e.log.Error("fork child: cannot install its uffd (its pages are lost if the engine dies)", "target", c.String(), "err", err)
	}
	c.mu.Lock()
	rec := c.record()
	c.mu.Unlock()
	e.journal.Target(rec)
	_ = e.journal.Flush()
	c.kick() // the loop now watches the child's pidfd too
	e.log.Info("fork child found", "target", c.String())
}

// findProbe looks for the child of parent whose probe slot holds nonce.
func findProbe(parent int, probe uint64, nonce []byte) int {
	deadline := time.Now().Add(identifyTimeout)
	buf := make([]byte, len(nonce))
	for time.Now().Before(deadline) {
		for _, c := range children(parent) {
			pm, err := os.Open("/proc/" + strconv.Itoa(c) + "/pagemap")
			if err != nil {
				continue
			}
			var b [8]byte
			_, err = pm.ReadAt(b[:], int64(probe/pageSize*8))
			pm.Close()
			if err != nil || binary.LittleEndian.Uint64(b[:])&(1<<63) == 0 {
				continue
			}
			if _, err := linux.ReadProcessMemory(c, probe, buf); err == nil && bytes.Equal(buf, nonce) {
				return c
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0
}

func isUffdIn(pid, fd int) bool {
	l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(fd))
	return err == nil && l == "anon_inode:[userfaultfd]"
}
