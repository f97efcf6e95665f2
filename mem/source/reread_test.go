package source

import (
	"bytes"
	"errors"
	"testing"
)

// checkReread reads every page of s again through ReadPage and compares it
// with what Scan delivered into c; pages outside the source are refused.
func checkReread(t *testing.T, s Source, c *collect) {
	t.Helper()
	r, ok := Rereader(s)
	if !ok {
		t.Fatalf("%s source is not rereadable", s.Kind())
	}
	dst := make([]byte, PageSize)
	var n int64
	for i := range c.regions {
		for p := uint64(0); p < c.pages(i); p++ {
			for k := range dst {
				dst[k] = 0xee // stale bytes must be overwritten
			}
			if err := r.ReadPage(n, dst); err != nil {
				t.Fatalf("re-read page %d: %v", n, err)
			}
			if !bytes.Equal(dst, c.bytes(i, p*PageSize, PageSize)) {
				t.Fatalf("page %d (region %d, page %d) reads back different", n, i, p)
			}
			n++
		}
	}
	for _, bad := range []int64{-1, n} {
		if err := r.ReadPage(bad, dst); !errors.Is(err, ErrBadSpec) {
			t.Fatalf("re-read page %d of %d: %v", bad, n, err)
		}
	}
	if err := r.ReadPage(0, dst[:100]); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("re-read into a short buffer: %v", err)
	}
}
