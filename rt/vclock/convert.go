package vclock

import (
	"math"
	"math/bits"
	"time"
)

// VirtToReal converts a relative virtual duration (a sleep or a timeout)
// to real: d x k, rounded up so that a positive timeout never becomes zero,
// saturating at the maximum duration. Zero and negative values are returned
// unchanged (the kernel treats them as "now" or as errors itself). It uses
// the TDF even while paused: a sleep begun in a pause runs at k.
func (p *Params) VirtToReal(d time.Duration) time.Duration {
	return time.Duration(mulDivUp(int64(d), p.TDF.Num, p.TDF.Den))
}

// RealToVirt converts a relative real duration (a remaining time the kernel
// reports) to virtual: d / k, rounded down. Negative values are scaled
// symmetrically.
func (p *Params) RealToVirt(d time.Duration) time.Duration {
	if d < 0 {
		return -time.Duration(mulDivDown(-int64(d), p.TDF.Den, p.TDF.Num))
	}
	return time.Duration(mulDivDown(int64(d), p.TDF.Den, p.TDF.Num))
}

// CPUVirtToReal converts a virtual CPU-time duration (ITIMER_VIRTUAL/PROF,
// CPU-clock timers) to real CPU time: d x s, rounded up, s = share x k.
func (p *Params) CPUVirtToReal(d time.Duration) time.Duration {
	return time.Duration(mulDivUp(int64(d), p.Share.Num*p.TDF.Num, p.Share.Den*p.TDF.Den))
}

// CPURealToVirt converts real CPU time to virtual: d / s, rounded down.
func (p *Params) CPURealToVirt(d time.Duration) time.Duration {
	if d < 0 {
		return -time.Duration(mulDivDown(-int64(d), p.Share.Den*p.TDF.Den, p.Share.Num*p.TDF.Num))
	}
	return time.Duration(mulDivDown(int64(d), p.Share.Den*p.TDF.Den, p.Share.Num*p.TDF.Num))
}

// RealDeadline maps an absolute virtual deadline of wall clock id to the
// earliest real reading of the same clock at which Virt(id, real) >= virt,
// so a timer armed at the returned time never fires early in virtual time.
// ok is false when the clock is paused and the deadline is still ahead
// (it would never come); the caller then keeps the sleep pending. Non-wall
// ids are returned unchanged with ok true.
func (p *Params) RealDeadline(id ClockID, virt int64) (real int64, ok bool) {
	if id.Kind() != KindWall {
		return virt, true
	}
	b := p.Bases[id]
	dv := subSat(virt, b.Virt)
	if p.Mult == 0 {
		if dv <= 0 {
			return b.Real, true
		}
		return math.MaxInt64, false
	}
	// Smallest r with floor(r*Mult/2^32) >= dv is ceil(dv*2^32/Mult).
	var r int64
	if dv >= 0 {
		r = shlDivUp(uint64(dv), p.Mult)
	} else {
		r = -shlDivDown(uint64(-dv), p.Mult)
	}
	return addSat(b.Real, r), true
}

// mulDivUp returns ceil(d*n/m) for d > 0 (d <= 0 unchanged), saturating.
func mulDivUp(d int64, n, m uint64) int64 {
	if d <= 0 {
		return d
	}
	hi, lo := bits.Mul64(uint64(d), n)
	var c uint64
	lo, c = bits.Add64(lo, m-1, 0)
	hi += c
	return divSat(hi, lo, m)
}

// mulDivDown returns floor(d*n/m) for d >= 0, saturating.
func mulDivDown(d int64, n, m uint64) int64 {
	hi, lo := bits.Mul64(uint64(d), n)
	return divSat(hi, lo, m)
}

// shlDivUp returns ceil(x*2^32/m) as a non-negative int64, saturating.
func shlDivUp(x, m uint64) int64 {
	hi, lo := x>>32, x<<32
	var c uint64
	lo, c = bits.Add64(lo, m-1, 0)
	hi += c
	return divSat(hi, lo, m)
}

// shlDivDown returns floor(x*2^32/m) as a non-negative int64, saturating.
func shlDivDown(x, m uint64) int64 {
	hi, lo := x>>32, x<<32
	return divSat(hi, lo, m)
}

// divSat returns (hi<<64 | lo) / m as a non-negative int64, saturating at
// math.MaxInt64 where the quotient does not fit (bits.Div64 would panic).
func divSat(hi, lo, m uint64) int64 {
	if hi >= m {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, m)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
