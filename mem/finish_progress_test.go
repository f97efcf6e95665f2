package mem

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
)

// progressEngine is an engine holding pages distinct pages of random bytes
// (each one compressed and planned: work enough for several reports).
func progressEngine(t *testing.T, pages int) *Engine {
	t.Helper()
	e, err := NewEngine(Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := e.AddSource("img", "d")
	r := rand.New(rand.NewPCG(7, 8))
	page := make([]byte, PageSize)
	for p := 0; p < pages; p++ {
		for i := range page {
			page[i] = byte(r.Uint32())
		}
		if err := e.AddPage(s, page); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// The patch-and-compress phase reports its progress (issue 10, low item:
// it sat at 0 MiB/s): reports come, never past the total, and reach it.
func TestFinishReportsProgress(t *testing.T) {
	e := progressEngine(t, 5000)
	var reports int
	var most, total int64
	res, err := e.FinishContext(context.Background(), func(done, tot int64) {
		reports++
		if done > tot {
			t.Errorf("progress %d of %d", done, tot)
		}
		most, total = max(most, done), tot
	})
	if err != nil || res == nil {
		t.Fatal(err)
	}
	if reports < 3 || most != total || total < 5000 {
		t.Fatalf("%d progress reports, most %d of %d: want several, reaching the total", reports, most, total)
	}
}

// A cancelled context stops Finish with the context's error.
func TestFinishCancelled(t *testing.T) {
	e := progressEngine(t, 3000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res, err := e.FinishContext(ctx, nil); !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("cancelled Finish: %v, %v", res, err)
	}
}
