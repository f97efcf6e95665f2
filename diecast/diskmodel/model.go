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

// Limiter paces operations at an IOPS and a byte rate (0: none): each one
// starts no earlier than the previous start plus max(1/iops, n/bps), like
// blkio's throttle at queue depth 1, without its slice's burst.
type Limiter struct {
	iops, bps int64
	// mu guards next, the earliest start of the next operation.
	mu   sync.Mutex
	next time.Time
}

// NewLimiter returns a limiter at iops and bps (0 = no limit).
func NewLimiter(iops, bps int64) *Limiter { return &Limiter{iops: iops, bps: bps} }

// Reserve returns when an operation of n bytes asked for at now may start,
// and books it.
func (l *Limiter) Reserve(now time.Time, n int) time.Time {
	if l == nil || (l.iops == 0 && l.bps == 0) {
		return now
	}
	var iv time.Duration
	if l.iops > 0 {
		iv = time.Second / time.Duration(l.iops)
	}
	if l.bps > 0 {
		iv = max(iv, time.Duration(float64(n)/float64(l.bps)*float64(time.Second)))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	start := now
	if l.next.After(start) {
		start = l.next
	}
	l.next = start.Add(iv)
	return start
}
