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
	before := fds(t)
	t.Cleanup(func() {
		if after := fds(t); after > before {
			t.Errorf("%d file descriptors leaked", after-before)
		}
	})
}
