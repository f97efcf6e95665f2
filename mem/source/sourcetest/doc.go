// Package sourcetest starts real processes with known memory for tests: the
// test binary re-executes itself as a helper (Go's GO_WANT_HELPER_PROCESS
// pattern) that maps pages of known content (identical, similar, zero,
// random, and an unreadable PROT_NONE guard), reports their addresses and
// waits. Tests read that memory through the real kernel interfaces.
package sourcetest
