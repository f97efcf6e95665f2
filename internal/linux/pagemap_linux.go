//go:build linux

package linux

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PAGEMAP_SCAN (Linux 6.7+, include/uapi/linux/fs.h): one ioctl on
// /proc/PID/pagemap that walks a range and returns runs of pages by
// category, optionally write-protecting the matched pages (for a range
// registered with userfaultfd in async write-protect mode, this is how
// written bits are read and reset in one step).

// Page categories of PAGEMAP_SCAN.
const (
	PageIsWPAllowed = 1 << 0
	PageIsWritten   = 1 << 1
	PageIsFile      = 1 << 2
	PageIsPresent   = 1 << 3
	PageIsSwapped   = 1 << 4
	PageIsPFNZero   = 1 << 5
	PageIsHuge      = 1 << 6
)

// Flags of PAGEMAP_SCAN.
const (
	PMScanWPMatching   = 1 << 0 // write-protect the matched pages
	PMScanCheckWPAsync = 1 << 1 // fail on a page not in async-WP mode
)

type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages       uint64
	categoryInverted, categoryMask, categoryAnyofMask, returnMask uint64
}

// 'f'<<8 | 16, _IOWR with the 96-byte argument.
var pagemapScanCmd = uintptr(3<<30 | unsafe.Sizeof(pmScanArg{})<<16 | 'f'<<8 | 16)

// PageRegion is a run of pages with the same categories.
type PageRegion struct {
	Start, End uint64
	Categories uint64
}

// PagemapScan is one PAGEMAP_SCAN request.
type PagemapScan struct {
	Start, End uint64
	Flags      uint64
	// A page matches when (categories ^ Inverted) & Mask == Mask and, if
	// AnyOf is set, (categories ^ Inverted) & AnyOf != 0.
	Inverted, Mask, AnyOf uint64
	// Return selects the categories reported (and merged into runs).
	Return uint64
	// MaxPages stops the walk after this many matched pages (0: no limit).
	MaxPages uint64
}

// ScanPagemap runs s on pm (an open /proc/PID/pagemap), appending the
// matched runs to out (up to cap(out) runs; at least one). walkEnd is where
// the kernel stopped: End when the whole range was walked, less when out or
// MaxPages filled up (call again from walkEnd).
func ScanPagemap(pm *os.File, s PagemapScan, out []PageRegion) ([]PageRegion, uint64, error) {
	out = out[:cap(out)]
	if len(out) == 0 {
		out = make([]PageRegion, 64)
	}
	a := pmScanArg{
		size: uint64(unsafe.Sizeof(pmScanArg{})), flags: s.Flags, start: s.Start, end: s.End,
		vec: uint64(uintptr(unsafe.Pointer(&out[0]))), vecLen: uint64(len(out)), maxPages: s.MaxPages,
		categoryInverted: s.Inverted, categoryMask: s.Mask, categoryAnyofMask: s.AnyOf, returnMask: s.Return,
	}
	var n uintptr
	err := retryEINTR(func() error {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, pm.Fd(), pagemapScanCmd, uintptr(unsafe.Pointer(&a)))
		if e != 0 {
			return e
		}
		n = r
		return nil
	})
	if err != nil {
		return out[:0], a.walkEnd, syscallErr("ioctl(PAGEMAP_SCAN)", err)
	}
	if int(n) > len(out) {
		return out[:0], a.walkEnd, fmt.Errorf("ioctl(PAGEMAP_SCAN): %d regions for a vector of %d", n, len(out))
	}
	return out[:n], a.walkEnd, nil
}
