package vdso

import "github.com/vmux/vmux/rt/vclock"

// Region layout, in bytes from the start of the mapping (AT_SYSINFO_EHDR).
// vdso.lds and build.sh use the same ImageSize.
const (
	PageSize = 4096
	// ImageSize is len(Image()): the ELF image padded to whole pages.
	ImageSize = 8192
	// ProcPageOffset is where the per-process page (ProcPage) is mapped.
	ProcPageOffset = ImageSize
	// ClockPageOffset is where the shared clock page (Clock) is mapped.
	ClockPageOffset = ImageSize + PageSize
	// RegionSize is the length of the whole mapping.
	RegionSize = ClockPageOffset + vclock.PageSize
)

// Per-process page layout (little-endian; struct proc_page in vdso.c).
const (
	ProcMagic   = 0x50584d56 // "VMXP"
	ProcVersion = 1

	ProcOffMagic        = 0
	ProcOffVersion      = 4
	ProcOffClockGettime = 8
	ProcOffGettimeofday = 16
	ProcOffTime         = 24
	ProcOffClockGetres  = 32
	ProcOffGetcpu       = 40
	ProcOffGetrandom    = 48
)
