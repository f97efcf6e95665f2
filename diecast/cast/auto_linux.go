//go:build linux

package cast

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vmux/vmux/rt/clock"
)

// The auto-TDF controller: every autoEvery it judges the last autoWindow
// of keep-up samples. If the host fell behind (the same thresholds that
// invalidate a run), k grows by autoUp at once; after autoCalm judgements
// in a row well inside them (every signal under half its limit), k
// shrinks by autoDown, never below 1 (the experiment at full speed).
const (
	autoEvery  = time.Second
	autoWindow = 4 // samples (1 s at the default 250 ms)
	autoUp     = 1.5
	autoDown   = 1.25
	autoCalm   = 5
)

// autoTDF runs the controller until the returned stop is called. It sets k
// through the experiment's clock (netd then re-applies node CPU quotas and
// disk throttles at the new k, and the link emulator follows the clock).
func (w *workload) autoTDF(mon *monitor) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	th := w.r.th
	kmax := w.r.o.AutoMax
	if kmax <= 0 {
		kmax = AutoMax
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(autoEvery)
		defer t.Stop()
		calm := 0
		var lastDelivered, lastLate, lastDrops uint64
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s := mon.recent(autoWindow)
			if len(s) == 0 {
				continue
			}
			var idle, wait float64
			for _, x := range s {
				idle += x.HostIdle / float64(len(s))
				wait += x.Wait / float64(len(s))
			}
			last := s[len(s)-1]
			dd := float64(last.Delivered - min(lastDelivered, last.Delivered))
			late, drops := 0.0, 0.0
			if dd > 0 {
				late = float64(last.Late-min(lastLate, last.Late)) / dd
				drops = float64(last.Drops-min(lastDrops, last.Drops)) / dd
			}
			lastDelivered, lastLate, lastDrops = last.Delivered, last.Late, last.Drops
			k := w.tm.k()
			var why string
			switch {
			case wait > th.MaxMeanWait:
				why = fmt.Sprintf("nodes denied %.0f%% of their share", 100*wait)
			case idle < th.MinMeanHostIdle:
				why = fmt.Sprintf("host %.0f%% idle", 100*idle)
			case late > th.MaxLateFraction:
				why = fmt.Sprintf("%.1f%% of packets late", 100*late)
			case drops > th.MaxDropFraction:
				why = fmt.Sprintf("%.2f%% of packets dropped outside the model", 100*drops)
			}
			next := k
			if why != "" {
				calm = 0
				next = math.Min(k*autoUp, kmax)
			} else if wait < th.MaxMeanWait/2 && idle > 2*th.MinMeanHostIdle && late < th.MaxLateFraction/2 && drops < th.MaxDropFraction/2 {
				if calm++; calm >= autoCalm && k > 1 {
					calm = 0
					next = math.Max(k/autoDown, 1)
					why = "host kept up well"
				}
			} else {
				calm = 0
			}
			next = math.Round(next*100) / 100
			if next == k {
				continue
			}
			if err := setTDF(w.st.Name, next); err != nil {
				w.event("auto tdf: %v", err)
				continue
			}
			if w.rto != nil {
				if err := w.rto.Set(next); err != nil {
					w.event("auto tdf: %v", err)
				}
			}
			now := time.Now()
			w.tm.change(now, next)
			w.mu.Lock()
			w.changes = append(w.changes, TDFChange{Real: now.Sub(w.t0).Seconds(), Virtual: w.tm.virt(now), From: k, To: next, Why: why})
			w.mu.Unlock()
			w.event("tdf %g -> %g (%s)", k, next, why)
		}
	}()
	return func() { close(done); <-finished }
}

// setTDF changes the experiment clock's factor.
func setTDF(name string, k float64) error {
	st, err := clock.Ask(name, clock.Request{Op: "set", TDF: strconv.FormatFloat(k, 'f', -1, 64)})
	if err != nil {
		return fmt.Errorf("set tdf of %s to %g: %w", name, k, err)
	}
	if st.Error != "" {
		return fmt.Errorf("set tdf of %s to %g: %s", name, k, st.Error)
	}
	return nil
}
