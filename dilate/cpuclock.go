package dilate

import (
	"time"

	"github.com/vmux/vmux/rt/vclock"
)

// CPU-time readings are real CPU time / s (s = share x k). vclock maps
// them without a base, so a change of k would rescale every reading and
// make it step, backwards too. The supervisor anchors each CPU-time
// reading it scales (a process's or thread's CPU clock, each getrusage and
// times field): at the first reading after a change it re-bases the
// anchor there, so readings stay continuous and monotonic. (The CPU time
// used between the change and that reading is counted at the old rate.)

type cpuKey struct {
	tgid, tid int // tid only for per-thread values
	what      int // which value (see the callers)
}

type cpuAnchor struct {
	real, virt int64 // real CPU time at the anchor, and its virtual value
	p          vclock.Params
	gen        uint64
}

// cpuVirt converts a real CPU-time reading for key to virtual.
func (t *tracer) cpuVirt(key cpuKey, real int64, p vclock.Params) int64 {
	if t.cpu == nil {
		t.cpu = map[cpuKey]*cpuAnchor{}
	}
	a := t.cpu[key]
	gen := t.gen()
	switch {
	case a == nil:
		a = &cpuAnchor{p: p, gen: gen}
		t.cpu[key] = a
	case a.gen != gen:
		a.virt += int64(a.p.CPURealToVirt(time.Duration(real - a.real)))
		a.real, a.p, a.gen = real, p, gen
	}
	return a.virt + int64(p.CPURealToVirt(time.Duration(real-a.real)))
}

// forgetCPU drops the anchors of an exited process.
func (t *tracer) forgetCPU(tgid int) {
	for k := range t.cpu {
		if k.tgid == tgid {
			delete(t.cpu, k)
		}
	}
}
