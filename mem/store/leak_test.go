package store

import (
	"os"
	"testing"
)

// fds counts this process's open file descriptors.
func fds(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkFDs fails the test if it ends with more descriptors open than it
// started with (a store, source or temp file left open).
func checkFDs(t *testing.T) {
	// The runtime opens its poller's descriptors (epoll, eventfd) on first
	// use and keeps them: open them now so they are not counted as leaks.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := fds(t)
	t.Cleanup(func() {
		if after := fds(t); after > before {
			t.Errorf("%d file descriptors leaked", after-before)
		}
	})
}
