package sourcetest

import "unsafe"

// addrOf is the address of a mapping, for the parent to find it in
// /proc/PID/maps.
func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&b[0]))) }
