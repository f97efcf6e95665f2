package clock

import (
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// RealSource reads the real clocks with clock_gettime. The alarm clocks
// are the same clocks as REALTIME and BOOTTIME and are not read.
type RealSource struct{}

// Now reads every wall clock. Reads are sequential (a few µs apart); each
// clock is re-based at its own reading, so each stays continuous.
func (RealSource) Now() vclock.Now {
	var n vclock.Now
	for _, id := range []vclock.ClockID{vclock.Monotonic, vclock.Realtime, vclock.MonotonicRaw,
		vclock.Boottime, vclock.TAI, vclock.MonotonicCoarse, vclock.RealtimeCoarse} {
		v, err := linux.ClockGettime(int32(id))
		if err != nil {
			// These clocks exist on every supported kernel; a failure here
			// is unrecoverable misconfiguration, so fall back to REALTIME
			// rather than anchor a clock at zero.
			v = n[vclock.Realtime]
		}
		n[id] = v
	}
	n[vclock.RealtimeAlarm] = n[vclock.Realtime]
	n[vclock.BoottimeAlarm] = n[vclock.Boottime]
	return n
}

var _ vclock.Source = RealSource{}
