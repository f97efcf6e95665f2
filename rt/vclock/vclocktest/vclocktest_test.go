package vclocktest

import (
	"testing"
	"time"

	"github.com/vmux/vmux/rt/vclock"
)

// fakeClock adapts vclock.Clock over vclock.Fake to Controller.
type fakeClock struct{ c *vclock.Clock }

func (f fakeClock) SetTDF(k vclock.TDF) error                  { return f.c.SetTDF(k) }
func (f fakeClock) Pause() error                               { f.c.Pause(); return nil }
func (f fakeClock) Resume() error                              { f.c.Resume(); return nil }
func (f fakeClock) Read(_ *testing.T, id vclock.ClockID) int64 { return f.c.Read(id) }

func TestFake(t *testing.T) {
	src := vclock.NewFake(1e12, 1.7e18)
	c, err := vclock.NewClock(src, vclock.Config{TDF: vclock.One})
	if err != nil {
		t.Fatal(err)
	}
	Run(t, fakeClock{c}, Env{
		Advance: src.Advance,
		Now:     func() time.Duration { return time.Duration(src.Now()[vclock.Monotonic]) },
	})
}
