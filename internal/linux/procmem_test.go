package linux

import (
	"os"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkReadProcessMemory reads 64 MiB of this process's own memory with
// process_vm_readv in 4 MiB batches and, in the same run, one page per call
// (the baseline); it reports both rates and their ratio.
func BenchmarkReadProcessMemory(b *testing.B) {
	src := make([]byte, 64<<20)
	for i := range src {
		src[i] = byte(i)
	}
	addr := uint64(uintptr(unsafe.Pointer(&src[0])))
	dst := make([]byte, 4<<20)
	pid := os.Getpid()
	read := func(batch int) {
		for off := 0; off < len(src); off += batch {
			n, err := ReadProcessMemory(pid, addr+uint64(off), dst[:batch])
			if err != nil || n != batch {
				b.Fatalf("read %d at %d: %d, %v", batch, off, n, err)
			}
		}
	}
	b.SetBytes(int64(len(src)))
	var big, small float64
	for b.Loop() {
		t := time.Now()
		read(4 << 20)
		big += time.Since(t).Seconds()
		t = time.Now()
		read(4096)
		small += time.Since(t).Seconds()
	}
	gb := func(s float64) float64 { return float64(len(src)) * float64(b.N) / s / 1e9 }
	b.ReportMetric(gb(big), "GB/s-4MiB")
	b.ReportMetric(gb(small), "GB/s-4KiB")
	b.ReportMetric(small/big, "x-faster")
}

func TestReadProcessMemory(t *testing.T) {
	src := []byte("process_vm_readv reads this")
	dst := make([]byte, len(src))
	n, err := ReadProcessMemory(os.Getpid(), uint64(uintptr(unsafe.Pointer(&src[0]))), dst)
	if err != nil || n != len(src) || string(dst) != string(src) {
		t.Fatalf("read own memory: %d %v %q", n, err, dst)
	}
	// Address 0 is never mapped: EFAULT, classified as unreadable.
	if _, err := ReadProcessMemory(os.Getpid(), 0, dst); !IsUnreadable(err) {
		t.Fatalf("read at 0: %v", err)
	}
}
