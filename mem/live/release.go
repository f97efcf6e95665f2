package live

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

var errLoopEnded = errors.New("the process's serve loop ended")

// Detach gives every page held for pid back to it and stops managing it;
// the process runs on as if nothing happened.
func (e *Engine) Detach(pid int) error {
	e.mu.Lock()
	var t *target
	for _, x := range e.targets {
		if x.pid == pid {
			t = x
		}
	}
	e.mu.Unlock()
	if t == nil {
		return &TargetError{Pid: pid, Op: "detach from", Err: errors.New("not attached")}
	}
	return e.onInjector(func() error { return e.release(t) })
}

// release gives t's pages back and detaches (on the injector thread, so
// no eviction of t is in flight).
func (e *Engine) release(t *target) error {
	t.mu.Lock()
	if t.gone {
		t.mu.Unlock()
		return nil
	}
	t.stopping = true
	t.mu.Unlock()
	if err := t.giveBack(); err != nil {
		if errors.Is(err, errLoopEnded) {
			return nil // the process exited meanwhile: nothing to give back
		}
		t.mu.Lock()
		t.stopping = false
		t.mu.Unlock()
		return &TargetError{Pid: t.pid, Op: "give pages back to", Err: err}
	}
	// The loop keeps serving while the engine's mappings and the
	// process's uffd go: a thread blocked on a first touch inside a system
	// call (a read into a new page) only reaches the stop the injection
	// needs once its fault is served, and the unmaps raise events the
	// loop must read.
	if t.pid != 0 {
		if err := t.injectDetach(); err != nil && !errors.Is(err, ErrGone) {
			e.log.Warn("removing the engine's mappings", "target", t.String(), "err", err)
		}
	}
	// Then the last descriptor closes (when the loop ends): the kernel
	// unregisters the memory and wakes whoever waits.
	t.post(func() bool { return true })
	<-t.loopDone
	t.mu.Lock()
	t.gone = true
	t.mu.Unlock()
	e.journal.TargetGone(t.id)
	if ferr := e.journal.Flush(); ferr != nil {
		return ferr
	}
	e.removeTarget(t)
	e.log.Info("detached; every page given back", "target", t.String())
	return nil
}

// giveBack returns every held page to the process, on its serve loop, a
// batch at a time so that faults and events are served in between.
func (t *target) giveBack() error {
	done := make(chan error, 1)
	page := make([]byte, pageSize)
	var step command
	step = func() bool {
		left, err := t.returnSome(256, page)
		switch {
		case err != nil:
			done <- err
		case left == 0:
			done <- nil
		default:
			t.post(step)
		}
		return false
	}
	t.post(step)
	select {
	case err := <-done:
		return err
	case <-t.loopDone:
		return errLoopEnded
	}
}

// returnSome copies up to max held pages back and returns how many stay
// held (pending pages count: they are waited for).
func (t *target) returnSome(max int, page []byte) (int, error) {
	type hp struct {
		addr uint64
		id   CID
	}
	var batch []hp
	t.mu.Lock()
	t.pt.each(0, ^uint64(0), func(a uint64, id CID) {
		if len(batch) < max {
			batch = append(batch, hp{a, id})
		}
	})
	t.mu.Unlock()
	for _, p := range batch {
		var err error
		if p.id == ZeroCID {
			err = t.zeroFill(p.addr, true)
		} else {
			if err = t.e.pool.Decode(p.id, page); err != nil {
				return 0, fmt.Errorf("rebuild page %#x: %w", p.addr, err)
			}
			err = t.copyIn(p.addr, page, true)
		}
		switch {
		case errors.Is(err, syscall.EAGAIN):
			// events pending: let the loop read them, then go on
			return 1, nil
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ESRCH):
			// the mapping (or the process) is gone: nothing to give back to
		case err != nil && !errors.Is(err, syscall.EEXIST):
			return 0, fmt.Errorf("copy page %#x back: %w", p.addr, err)
		}
		t.mu.Lock()
		back := t.pt.held(p.addr) == p.id
		if back {
			t.pt.set(p.addr, NoCID, t.e.epoch.Load())
			t.st.held--
		}
		t.mu.Unlock()
		if back {
			t.e.journal.Unmap(t.id, p.addr)
			t.e.pool.Release(p.id)
		}
	}
	t.mu.Lock()
	left := int(t.st.held) + len(t.pending)
	t.mu.Unlock()
	return left, nil
}

// Stop gives every page of every process back, detaches from them all
// and removes the store. If a process cannot be given its pages, the store
// stays (vmux mem live recover serves them again) and Stop says so.
func (e *Engine) Stop() error {
	var first error
	e.stopOnce.Do(func() { first = e.stop() })
	return first
}

func (e *Engine) stop() error {
	var errs []error
	for {
		e.mu.Lock()
		var t *target
		for _, x := range e.targets {
			if t == nil || x.id < t.id {
				t = x
			}
		}
		e.mu.Unlock()
		if t == nil {
			break
		}
		if err := e.onInjector(func() error { return e.release(t) }); err != nil {
			errs = append(errs, err)
			e.removeTarget(t) // keep its journal records; go on with the others
		}
	}
	close(e.quit)
	<-e.injDone
	err := errors.Join(errs...)
	if cerr := e.journal.Close(); err == nil {
		err = cerr
	}
	e.payloads.Close()
	if err == nil {
		// nothing is held any more: the store goes
		for _, f := range []string{journalFile, payloadFile} {
			if rerr := os.Remove(filepath.Join(e.cfg.Dir, f)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = rerr
			}
		}
	}
	os.Remove(filepath.Join(e.cfg.Dir, ownerFile))
	if err == nil {
		// a clean stop leaves nothing behind
		os.Remove(filepath.Join(e.cfg.Dir, sockFile))
		os.Remove(filepath.Join(e.cfg.Dir, logFile))
		os.Remove(e.cfg.Dir)
	}
	e.dir.Close()
	return err
}
