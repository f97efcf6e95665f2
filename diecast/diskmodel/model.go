package diskmodel

import (
	"fmt"
	"math"
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
}

// MaxFactor bounds k (the node's TDF bound).
const MaxFactor = 1000

// Validate reports a model that cannot be served.
func (m Model) Validate() error {
	if !(m.Factor >= 1) || m.Factor > MaxFactor || math.IsInf(m.Factor, 0) {
		return fmt.Errorf("%w: factor %v: give 1 to %v", ErrBadModel, m.Factor, MaxFactor)
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
