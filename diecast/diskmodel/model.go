package diskmodel

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Model says how long a reply waits after the backing operation returned.
type Model struct {
	// Factor is k, the node's time-dilation factor (>= 1), for a node
	// whose time is a fixed factor of real time (FixedTime); a server
	// reading the experiment's clock (ClockTime) takes k from it.
	Factor float64
	// Lead is real time credited for the FUSE round trip itself (the
	// kernel and the server's wake-up, paid outside the measured call);
	// 0 credits nothing, so a reply never comes before k x s.
	Lead time.Duration
	// Rates the server applies, in the node's time (the spec's), 0 =
	// none: with the model a node's disk rates are not blkio's (the
	// throttle's wait would be timed as service and scaled a second
	// time) but the server's, paced before the backing call (Limiter).
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

// Deadline is the node time at which the reply to an operation whose
// backing call began at node time begin and took service (real) is due:
// begin + service, less the lead in the node's time at factor k (no lead
// while paused, k = 0). The operation then lasts its service time in the
// node's time, as it did on the host.
func (m Model) Deadline(begin int64, service time.Duration, k float64) int64 {
	if service <= 0 {
		return begin
	}
	d := int64(service)
	if k > 0 {
		d -= int64(float64(m.Lead) / k)
	}
	return begin + max(d, 0)
}

// Limiter paces operations at an IOPS and a byte rate (0: none) the way
// blkio's throttle does: in slices (the kernel's is 100 ms), each of which
// lets rate x slice of operations and bytes through at once; an operation
// that would exceed them waits for the next slice. The server's times are
// the node's (NodeTime) and its slice the kernel's, ThrottleSlice, in the
// node's time (k x 100 ms real), so that the burst-and-wait pattern of
// the baseline's latencies is kept too.
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
