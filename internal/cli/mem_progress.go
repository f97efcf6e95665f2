package cli

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/term"
)

func termIsTerminal(fd int) bool { return term.IsTerminal(fd) }

// progress draws a one-line progress bar on a terminal and nothing
// otherwise. It is redrawn at most ten times a second.
type progress struct {
	w     io.Writer
	on    bool
	label string
	total int64
	n     int64
	t0    time.Time
	last  time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, on: isTerminal(w)} }

func (p *progress) start(label string, total int64) {
	p.label, p.total, p.n, p.t0 = label, total, 0, time.Now()
	p.draw(true)
}

func (p *progress) add(n int64) {
	p.n += n
	p.draw(false)
}

// fraction reports work done out of a total in units other than bytes
// (FinishContext's pages): the bar shows the percentage, not a rate.
func (p *progress) fraction(done, total int64) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond || total <= 0 {
		return
	}
	p.last = time.Now()
	const width = 30
	n := min(width, int(int64(width)*done/total))
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '.'
		if i < n {
			bar[i] = '#'
		}
	}
	fmt.Fprintf(p.w, "\r\033[K%s [%s] %d%% (%.0fs)", p.label, bar, 100*done/total, time.Since(p.t0).Seconds())
}

func (p *progress) draw(force bool) {
	if !p.on || (!force && time.Since(p.last) < 100*time.Millisecond) {
		return
	}
	p.last = time.Now()
	rate := float64(p.n) / max(time.Since(p.t0).Seconds(), 1e-3) / (1 << 20)
	if p.total > 0 {
		const width = 30
		done := min(width, int(int64(width)*p.n/p.total))
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = '.'
			if i < done {
				bar[i] = '#'
			}
		}
		fmt.Fprintf(p.w, "\r\033[K%s [%s] %s/%s %.0f MiB/s", p.label, bar, mib(p.n), mib(p.total), rate)
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s %s %.0f MiB/s", p.label, mib(p.n), rate)
}

func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// mib formats bytes as MiB with one decimal.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
