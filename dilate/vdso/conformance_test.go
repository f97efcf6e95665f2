package vdso

import (
	"fmt"
	"github.com/vmux/vmux/rt/clock"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
	"github.com/vmux/vmux/rt/vclock/vclocktest"
)

// realClock is the real thing behind vclocktest.Controller: the shared
// page written through Clock, read through the replacement vDSO in the C
// harness (another process).
type realClock struct {
	c *clock.Clock
	h *harness
}

func (r realClock) SetTDF(k vclock.TDF) error { _, err := r.c.SetTDF(k); return err }
func (r realClock) Pause() error              { _, err := r.c.Pause(); return err }
func (r realClock) Resume() error             { _, err := r.c.Resume(); return err }

func (r realClock) Read(t *testing.T, id vclock.ClockID) int64 {
	row := r.h.do(fmt.Sprintf("r %d 1", id), 1)[0]
	if row[0] != 0 {
		t.Fatalf("read %v: ret %d", id, row[0])
	}
	return row[2]
}

// TestConformance runs the suite that also runs over vclock.Fake.
func TestConformance(t *testing.T) {
	clk := newTestClock(t, "1")
	h := startHarness(t, clk)
	vclocktest.Run(t, realClock{clk, h}, vclocktest.Env{
		Advance: time.Sleep,
		Now: func() time.Duration {
			ns, err := linux.ClockGettime(int32(vclock.Monotonic))
			if err != nil {
				t.Fatal(err)
			}
			return time.Duration(ns)
		},
	})
}
