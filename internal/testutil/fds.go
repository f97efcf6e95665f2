package testutil

import (
	"os"
	"testing"
)

// OpenFDs counts this process's open file descriptors.
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// CheckFDs fails t if it ends with more file descriptors open than it
// started with (a store, source, TUN, uffd or temp file left open).
func CheckFDs(t testing.TB) {
	t.Helper()
	// The runtime opens its poller's descriptors (epoll, eventfd) on first
	// use and keeps them: open them now so they are not counted as leaks.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := OpenFDs(t)
	t.Cleanup(func() {
		if after := OpenFDs(t); after > before {
			t.Errorf("%d file descriptors leaked", after-before)
		}
	})
}
