package store

import (
	"context"
	"errors"
	"testing"

	"github.com/vmux/vmux/mem"
)

// Unpack reports its progress (issue 10, low item): the bytes reported add
// up to the memory of every source, in several reports; a cancelled
// context stops it with the context's error.
func TestUnpackProgressAndCancel(t *testing.T) {
	dir := t.TempDir()
	path, _ := pack(t, dir, mem.Config{}, image(t, dir, 5, 3000))
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var want int64
	for _, src := range s.Sources() {
		want += int64(src.Pages) * PageSize
	}
	var got int64
	var reports int
	if _, err := s.Unpack(context.Background(), t.TempDir()+"/out", func(n int64) { got += n; reports++ }); err != nil {
		t.Fatal(err)
	}
	if got != want || reports < 3 {
		t.Fatalf("progress: %d bytes in %d reports, want %d in several", got, reports, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Unpack(ctx, t.TempDir()+"/out", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled unpack: %v", err)
	}
}
