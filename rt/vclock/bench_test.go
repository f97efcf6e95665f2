package vclock

import (
	"testing"
	"time"
)

var sink int64

// BenchmarkConvert times the conversions the supervisor makes per trapped
// syscall, side by side with a baseline of plain 64-bit arithmetic (which
// overflows past ~9 s x k and rounds wrongly, so it is only a floor).
func BenchmarkConvert(b *testing.B) {
	p := mustParams(b, "10", Now{1: 1e12})
	reals := make([]int64, 1024)
	for i := range reals {
		reals[i] = 1e12 + int64(i)*int64(time.Millisecond)
	}
	b.Run("baseline-int64", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			sink += (reals[i&1023]-1e12)*int64(p.TDF.Den)/int64(p.TDF.Num) + 1e12
		}
	})
	b.Run("Virt", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			sink += p.Virt(Monotonic, reals[i&1023])
		}
	})
	b.Run("VirtToReal", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			sink += int64(p.VirtToReal(time.Duration(reals[i&1023])))
		}
	})
	b.Run("RealDeadline", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			r, _ := p.RealDeadline(Monotonic, reals[i&1023])
			sink += r
		}
	})
}
