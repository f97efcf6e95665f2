package diskmodel

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Model says how long a reply waits after the backing operation returned.
type Model struct {
	// Factor is k, the node's time-dilation factor (>= 1).
	Factor float64
	// Lead is real time credited for the FUSE round trip itself (the
	// kernel and the server's wake-up, paid outside the measured call);
	// 0 credits nothing, so a reply never comes before k x s.
	Lead time.Duration
	// Rates the server applies, real (already divided by k), 0 = none:
	// with the model a node's disk rates are not blkio's (the throttle's
	// wait would be timed as service and scaled a second time) but the
	// server's, paced before the backing call (Limiter).
	ReadIOPS, WriteIOPS, ReadBps, WriteBps int64
}

// MaxFactor bounds k (the node's TDF bound).
const MaxFactor = 1000

// Validate reports a model that cannot be served.
func (m Model) Validate() error {
	if !(m.Factor >= 1) || m.Factor > MaxFactor || math.IsInf(m.Factor, 0) {
		return fmt.Errorf("%w: factor %v: give 1 to %v", ErrBadModel, m.Factor, MaxFactor)
	}
	if m.ReadIOPS < 0 || m.WriteIOPS < 0 || m.ReadBps < 0 || m.WriteBps < 0 {
		return fmt.Errorf("%w: negative rate", ErrBadModel)
	}
	if m.Lead < 0 {
		return fmt.Errorf("%w: lead %v is negative", ErrBadModel, m.Lead)
	}
	return nil
}

// Hold is how long the reply to an operation whose backing call took
// service waits after that call returned: (k - 1) x service, less the
// lead, never negative. The operation then completes k x service after it
// began (less the lead), its service time in the node's virtual time.
func (m Model) Hold(service time.Duration) time.Duration {
	if service <= 0 {
		return 0
	}
	h := time.Duration((m.Factor-1)*float64(service)) - m.Lead
	if h < 0 {
		return 0
	}
	return h
}

// Limiter paces operations at an IOPS and a byte rate (0: none) the way
// blkio's throttle does: in slices (the kernel's is 100 ms), each of which
// lets rate x slice of operations and bytes through at once; an operation
// that would exceed them waits for the next slice. The server's slice is
// k x 100 ms real (ThrottleSlice), the kernel's in the node's time, so that
// the burst-and-wait pattern of the baseline's latencies is kept too.
type Limiter struct {
	iops, bps int64
	slice     time.Duration
	// mu guards the current slice: its start and what it let through.
	mu         sync.Mutex
	start      time.Time
	ops, bytes float64
}

// ThrottleSlice is the kernel's blkio throttle slice (throtl_slice, HZ/10).
const ThrottleSlice = 100 * time.Millisecond

// NewLimiter returns a limiter at iops and bps (0 = no limit) with slices
// of slice.
func NewLimiter(iops, bps int64, slice time.Duration) *Limiter {
	return &Limiter{iops: iops, bps: bps, slice: max(slice, time.Millisecond)}
}

// Reserve returns when an operation of n bytes asked for at now may start,
// and books it.
func (l *Limiter) Reserve(now time.Time, n int) time.Time {
	if l == nil || (l.iops == 0 && l.bps == 0) {
		return now
	}
	sec := l.slice.Seconds()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() || !now.Before(l.start.Add(l.slice)) {
		l.start, l.ops, l.bytes = now, 0, 0
	}
	over := func() bool {
		// the first operation of a slice always passes (below one
		// operation a slice, the rate is one a slice)
		return l.ops > 0 && ((l.iops > 0 && l.ops+1 > float64(l.iops)*sec+1e-9) || (l.bps > 0 && l.bytes+float64(n) > float64(l.bps)*sec))
	}
	start := now
	for over() {
		l.start = l.start.Add(l.slice)
		l.ops, l.bytes = 0, 0
		start = l.start
	}
	l.ops++
	l.bytes += float64(n)
	return start
}
