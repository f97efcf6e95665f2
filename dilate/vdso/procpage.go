package vdso

import "encoding/binary"

// Symbols holds the addresses (or, from ParseVDSO, the offsets from the
// mapping start) of a vDSO's functions. Zero means absent: the replacement
// then makes the raw syscall itself (which the supervisor traps and
// dilates) or, for getrandom, reports ENOSYS.
type Symbols struct {
	ClockGettime, Gettimeofday, Time, ClockGetres, Getcpu uint64
	// Getrandom is __vdso_getrandom (Linux 6.11+), used by glibc 2.41+ and
	// Go 1.24+; it passes through unchanged.
	Getrandom uint64
}

// Add returns s with base added to every present symbol: ParseVDSO gives
// offsets, a tracee's real vDSO is mapped at base.
func (s Symbols) Add(base uint64) Symbols {
	add := func(v uint64) uint64 {
		if v == 0 {
			return 0
		}
		return v + base
	}
	return Symbols{add(s.ClockGettime), add(s.Gettimeofday), add(s.Time), add(s.ClockGetres), add(s.Getcpu), add(s.Getrandom)}
}

// ProcPage builds the per-process page (PageSize bytes) for a tracee whose
// real vDSO functions live at the absolute addresses realSyms.
func ProcPage(realSyms Symbols) []byte {
	p := make([]byte, PageSize)
	le := binary.LittleEndian
	le.PutUint32(p[ProcOffMagic:], ProcMagic)
	le.PutUint32(p[ProcOffVersion:], ProcVersion)
	le.PutUint64(p[ProcOffClockGettime:], realSyms.ClockGettime)
	le.PutUint64(p[ProcOffGettimeofday:], realSyms.Gettimeofday)
	le.PutUint64(p[ProcOffTime:], realSyms.Time)
	le.PutUint64(p[ProcOffClockGetres:], realSyms.ClockGetres)
	le.PutUint64(p[ProcOffGetcpu:], realSyms.Getcpu)
	le.PutUint64(p[ProcOffGetrandom:], realSyms.Getrandom)
	return p
}
