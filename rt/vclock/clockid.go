package vclock

import "strconv"

// ClockID is a Linux clockid_t.
type ClockID int32

// The static clock ids (linux/time.h). 10 (CLOCK_SGI_CYCLE) is unused.
const (
	Realtime        ClockID = 0
	Monotonic       ClockID = 1
	ProcessCPUTime  ClockID = 2
	ThreadCPUTime   ClockID = 3
	MonotonicRaw    ClockID = 4
	RealtimeCoarse  ClockID = 5
	MonotonicCoarse ClockID = 6
	Boottime        ClockID = 7
	RealtimeAlarm   ClockID = 8
	BoottimeAlarm   ClockID = 9
	TAI             ClockID = 11

	// NumClocks is the number of static ids the clock page holds bases for.
	NumClocks = 12
)

// Kind says how a clock is dilated.
type Kind int

const (
	// KindWall clocks are dilated through their Base and Mult.
	KindWall Kind = iota
	// KindCPU clocks read real CPU time / s (no base).
	KindCPU
	// KindOther clocks (unused or fd-based ids) pass through unchanged.
	KindOther
)

// Kind classifies id. Negative ids encode per-process/per-thread CPU clocks
// (low 3 bits != 3) or fd-based POSIX clocks (low 3 bits == 3).
func (id ClockID) Kind() Kind {
	switch {
	case id == ProcessCPUTime || id == ThreadCPUTime:
		return KindCPU
	case id < 0 && id&7 != 3:
		return KindCPU
	case id >= 0 && id < NumClocks && id != 10:
		return KindWall
	}
	return KindOther
}

var clockNames = [NumClocks]string{
	"REALTIME", "MONOTONIC", "PROCESS_CPUTIME_ID", "THREAD_CPUTIME_ID",
	"MONOTONIC_RAW", "REALTIME_COARSE", "MONOTONIC_COARSE", "BOOTTIME",
	"REALTIME_ALARM", "BOOTTIME_ALARM", "SGI_CYCLE", "TAI",
}

func (id ClockID) String() string {
	if id >= 0 && id < NumClocks {
		return clockNames[id]
	}
	return "clock(" + strconv.Itoa(int(id)) + ")"
}

// Now holds one real reading (ns since the clock's epoch) per static clock
// id, taken together at one instant; entries of non-wall ids are ignored.
type Now [NumClocks]int64

// Source reads the real clocks. The real source lives with the shared clock
// (dilate/vdso); Fake is the test double.
type Source interface {
	Now() Now
}
