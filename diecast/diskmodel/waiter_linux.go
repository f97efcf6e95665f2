package diskmodel

import (
	"runtime"
	"sync"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// Bounds of the waiter's estimate of how late a nanosleep wakes.
const (
	estStart = 50 * time.Microsecond
	estStep  = 2 * time.Microsecond
	estMax   = 300 * time.Microsecond
)

// Waiter waits until deadlines, never returning before one and a few
// microseconds after it at the median. Go's timers round a sleep shorter
// than a millisecond up to one, and a nanosleep here wakes 50-100 µs late
// even with the thread's timer slack at 1 ns, so Waiter nanosleeps until
// est before the deadline, est tracking the median of the lateness seen,
// then spins on the clock for the rest (at most est, ~est/2 at the mean).
// Safe for concurrent use.
type Waiter struct {
	// mu guards est.
	mu  sync.Mutex
	est time.Duration
}

// NewWaiter returns a waiter with the starting estimate.
func NewWaiter() *Waiter { return &Waiter{est: estStart} }

func (w *Waiter) estimate() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.est
}

// observe moves the estimate one step towards the lateness seen (a
// stochastic median).
func (w *Waiter) observe(late time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if late > w.est {
		w.est = min(w.est+estStep, estMax)
	} else {
		w.est = max(w.est-estStep, 0)
	}
}

// Until returns at deadline or just after it.
func (w *Waiter) Until(deadline time.Time) {
	now := time.Now()
	d := deadline.Sub(now)
	if d <= 0 {
		return
	}
	if est := w.estimate(); d > est {
		sleep := d - est
		runtime.LockOSThread() // the slack is the thread's
		_ = linux.SetTimerSlack(1)
		linux.Nanosleep(sleep)
		runtime.UnlockOSThread()
		w.observe(time.Since(now) - sleep)
	}
	for time.Now().Before(deadline) {
	}
}
