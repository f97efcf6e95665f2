package netem

import (
	"math"
	"runtime"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

const maxTime = math.MaxInt64

// schedule is the single scheduler loop: it pops every packet whose time
// has come from the pipes (a heap keyed by each pipe's earliest packet),
// moves it to its next pipe or delivers it, then sleeps until the next
// deadline: an interruptible hrtimer sleep (ppoll on an eventfd) for far
// deadlines, a yielding spin for the last SpinWindow, because a sleep
// overshoots by ~100-180 us here and Go's timers round to 1 ms.
func (e *Emulator) schedule() {
	// A raised priority keeps the deadline-keeping thread ahead of other
	// work on a busy host. The thread is locked, so the nice value stays
	// with this goroutine, and it exits with it (never unlocked), so no
	// other goroutine inherits it.
	if e.opts.Nice != 0 {
		runtime.LockOSThread()
		if err := linux.SetThreadNice(e.opts.Nice); err != nil {
			e.log.Debug("raising scheduler priority", "nice", e.opts.Nice, "err", err)
		}
	}
	var batch []packet
	for {
		e.mu.Lock()
		e.followClock()
		now := e.now()
		batch = batch[:0]
		for len(e.heap) > 0 {
			p := e.heap[0]
			if p.q.front().at > now {
				break
			}
			pk := e.take(p)
			if p.q.len() == 0 {
				e.heapPop()
			} else {
				e.heapFix(0)
			}
			path := e.paths[pk.path]
			if int(pk.hop)+1 < len(path) {
				pk.hop++
				// Enter the next link at the time the packet reached it,
				// not now: scheduler lateness does not add up over hops.
				e.enter(path[pk.hop], pk, pk.at)
				continue
			}
			batch = append(batch, pk)
		}
		next := int64(maxTime)
		if len(e.heap) > 0 {
			next = e.heap[0].q.front().at
		}
		e.sleepUntil = next
		e.mu.Unlock()

		e.lateness(batch, now)
		e.match(batch)
		e.deliver(batch)
		e.signal()
		if e.closed.Load() {
			return
		}
		e.wait(next)
	}
}

// wait returns when the deadline next (ns) has come, when a reader queued
// an earlier packet, or on Close.
func (e *Emulator) wait(next int64) {
	spin := int64(e.opts.SpinWindow)
	for {
		if e.closed.Load() || e.pending.Swap(false) {
			return
		}
		d := next - e.now()
		if d <= 0 {
			return
		}
		if e.vt != nil {
			// Virtual deadline: the real wait it takes at the current k
			// (none while paused), re-checked at least every
			// maxVirtualSleep in case no one calls ClockChanged.
			if next == maxTime {
				d = maxTime
			} else {
				d = e.vt.toReal(d)
			}
		}
		if d <= spin {
			runtime.Gosched()
			continue
		}
		e.state.Store(1)
		if e.pending.Load() || e.closed.Load() {
			e.state.Store(0)
			continue
		}
		timeout := time.Duration(-1)
		if next != maxTime && d != maxTime {
			timeout = time.Duration(d - max(spin, 0))
		}
		if e.vt != nil && (timeout < 0 || timeout > maxVirtualSleep) {
			timeout = maxVirtualSleep
		}
		if _, err := e.waker.Wait(timeout); err != nil {
			e.log.Error("scheduler sleep", "err", err)
			time.Sleep(time.Millisecond)
		}
		e.state.Store(0)
	}
}

// kick wakes the scheduler for an earlier deadline or Close. Only one
// kicker pays for the eventfd write per sleep.
func (e *Emulator) kick() {
	e.pending.Store(true)
	if e.state.CompareAndSwap(1, 2) {
		if err := e.waker.Wake(); err != nil {
			e.log.Error("waking scheduler", "err", err)
		}
	}
}

// The heap of pipes with packets in flight, keyed by their earliest
// arrival. Hand-written (no container/heap) to avoid interface calls.

func (e *Emulator) less(i, j int) bool { return e.heap[i].q.front().at < e.heap[j].q.front().at }

func (e *Emulator) swap(i, j int) {
	h := e.heap
	h[i], h[j] = h[j], h[i]
	h[i].heapI, h[j].heapI = i, j
}

func (e *Emulator) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !e.less(j, i) {
			break
		}
		e.swap(i, j)
		j = i
	}
}

func (e *Emulator) down(i int) bool {
	i0, n := i, len(e.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && e.less(r, l) {
			j = r
		}
		if !e.less(j, i) {
			break
		}
		e.swap(i, j)
		i = j
	}
	return i > i0
}

func (e *Emulator) heapPush(p *pipe) {
	p.heapI = len(e.heap)
	e.heap = append(e.heap, p)
	e.up(p.heapI)
}

func (e *Emulator) heapPop() {
	n := len(e.heap) - 1
	e.swap(0, n)
	e.heap[n].heapI = -1
	e.heap[n] = nil
	e.heap = e.heap[:n]
	if n > 0 {
		e.down(0)
	}
}

func (e *Emulator) heapFix(i int) {
	if !e.down(i) {
		e.up(i)
	}
}

// lateThreshold is the lateness from which a delivery counts as late.
const lateThreshold = int64(100 * time.Microsecond)

// maxVirtualSleep bounds one scheduler sleep in virtual mode: a change of
// k or a resume nobody announced (ClockChanged) is noticed this soon.
const maxVirtualSleep = 20 * time.Millisecond

// lateness records how far behind the model the batch popped at now is:
// the host's scheduling delays show here (Mininet-HiFi's "did the host
// keep up" check), so a run can tell whether its timings are valid.
func (e *Emulator) lateness(batch []packet, now int64) {
	k := 1.0
	if e.vt != nil && len(batch) > 0 {
		k, _ = e.vt.state() // lateness is the host's: count it in real time
	}
	for i := range batch {
		l := now - batch[i].at
		if k != 1 {
			l = int64(float64(l) * k)
		}
		e.ctr.lateSum.Add(uint64(l))
		e.ctr.lateN.Add(1)
		if l > lateThreshold {
			e.ctr.late.Add(1)
		}
		if l > e.ctr.lateMax.Load() {
			e.ctr.lateMax.Store(l)
		}
	}
}
