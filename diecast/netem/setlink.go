package netem

import (
	"fmt"
	"math"

	"github.com/vmux/vmux/diecast/topology"
)

// SetLink changes the parameters of directed link id while the emulator
// runs, in the experiment's virtual units (scaled by the network's TDF like
// the spec's), e.g. loss 100% to cut a link and partition the network.
// Queue 0 means the spec's default (topology.DefaultQueue).
// Packets already past the link's transmitter keep their timing; the
// transmitter's backlog carries over.
func (e *Emulator) SetLink(id int, virt topology.LinkParams) error {
	if id < 0 || id >= len(e.pipes) {
		return fmt.Errorf("setting link %d: no such link (0-%d)", id, len(e.pipes)-1)
	}
	if virt.Bandwidth < 0 || virt.Latency < 0 || virt.Jitter < 0 || virt.Loss < 0 || virt.Loss > 1 || virt.Queue < 0 ||
		math.IsNaN(float64(virt.Bandwidth)) || math.IsNaN(float64(virt.Loss)) {
		return fmt.Errorf("setting link %d: parameters out of range: %+v", id, virt)
	}
	if virt.Queue == 0 {
		virt.Queue = topology.DefaultQueue(virt.Bandwidth)
	}
	real := virt
	if e.vt == nil {
		real = virt.Scale(e.net.TDF) // real-time mode applies the scaled parameters
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.pipes[id]
	m := newModel(real, e.opts.Seed, id)
	m.lead, m.rng = p.m.lead, p.m.rng
	m.busyUntil, m.lastArrive = p.m.busyUntil, p.m.lastArrive
	p.m = m
	p.fl.limit = flightLimit(&p.m, e.opts.UnlimitedInFlight)
	return nil
}
