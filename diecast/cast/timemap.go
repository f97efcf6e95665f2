package cast

import (
	"sync"
	"time"
)

// timeMap converts real instants of a run to its experiment's virtual
// time: piecewise linear, one segment per TDF in force (an auto run
// changes k; every other run has one segment).
type timeMap struct {
	mu   sync.Mutex // guards segs
	segs []segment
}

type segment struct {
	real time.Time
	virt float64 // virtual seconds since the workload started, at real
	k    float64
}

func newTimeMap(t0 time.Time, k float64) *timeMap {
	return &timeMap{segs: []segment{{real: t0, k: k}}}
}

// virt is the virtual seconds since the start at real instant t.
func (m *timeMap) virt(t time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.segs[0]
	for _, x := range m.segs[1:] {
		if !t.Before(x.real) {
			s = x
		}
	}
	return s.virt + t.Sub(s.real).Seconds()/s.k
}

// k is the factor in force now.
func (m *timeMap) k() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.segs[len(m.segs)-1].k
}

// change records that k became k2 at real instant t.
func (m *timeMap) change(t time.Time, k2 float64) {
	v := m.virt(t)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.segs = append(m.segs, segment{real: t, virt: v, k: k2})
}
