package vdso

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/vclock"
)

// libfaketime is Debian's faketime preload library (package faketime).
const libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

// BenchmarkClockRead measures, side by side in one harness process, a
// clock_gettime through the real vDSO (native), through the replacement at
// TDF 10 (dilated) and through libc (which calls the real vDSO), with 1
// and 2 threads reading at once. The faketime variants run the same loop
// with libc's clock_gettime intercepted by libfaketime (FAKETIME="+0 x0.1",
// the same slow-down). Reported per read and per thread, with ratios.
func BenchmarkClockRead(b *testing.B) {
	testutil.MustHaveCommand(b, "gcc")
	for _, id := range []vclock.ClockID{vclock.Monotonic, vclock.Realtime} {
		for _, threads := range []int{1, 2} {
			for _, faketime := range []bool{false, true} {
				name := fmt.Sprintf("%v/threads=%d", id, threads)
				if faketime {
					name += "/faketime"
				}
				b.Run(name, func(b *testing.B) {
					var env []string
					if faketime {
						if _, err := os.Stat(libfaketime); err != nil {
							testutil.MustHaveCommand(b, "faketime")
							b.Skipf("%s missing: %v", libfaketime, err)
						}
						env = []string{"LD_PRELOAD=" + libfaketime, "FAKETIME=+0 x0.1"}
					}
					clk := newTestClock(b, "10")
					h := startHarness(b, clk, env...)
					n := max(b.N, 1000)
					b.ResetTimer()
					row := strings.Fields(h.line(fmt.Sprintf("bench %d %d %d", id, n, threads)))
					b.StopTimer()
					if len(row) != 3 {
						b.Fatalf("harness: %v", row)
					}
					nat, _ := strconv.ParseFloat(row[0], 64)
					dil, _ := strconv.ParseFloat(row[1], 64)
					lib, _ := strconv.ParseFloat(row[2], 64)
					b.ReportMetric(nat, "native-ns/read")
					b.ReportMetric(dil, "dilated-ns/read")
					b.ReportMetric(dil/nat, "dilated/native")
					if faketime {
						b.ReportMetric(lib, "faketime-ns/read")
						b.ReportMetric(lib/nat, "faketime/native")
					} else {
						b.ReportMetric(lib, "libc-ns/read")
					}
				})
			}
		}
	}
}
