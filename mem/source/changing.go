package source

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmux/vmux/mem/pageindex"
)

// A file can change while it is read: the memory-backend-file of a running
// QEMU guest in /dev/shm, say. Such a source is analyzed as it was read
// (every page as the scan found it, copied into the engine rather than
// re-read, so the result is self-consistent), and Watched counts the pages
// that changed meanwhile, for the report.

// MappedShared reports whether a running process maps the file at path
// shared and writable (rw-s in its maps): it may change at any moment.
func MappedShared(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	d := uint64(sys.Dev)
	major := (d>>8)&0xfff | (d>>32)&^0xfff
	minor := d&0xff | (d>>12)&^0xff
	dev := fmt.Sprintf("%02x:%02x", major, minor)
	ino := strconv.FormatUint(sys.Ino, 10)
	procs, _ := filepath.Glob("/proc/[0-9]*/maps")
	for _, p := range procs {
		if mapsHas(p, dev, ino) {
			return true
		}
	}
	return false
}

func mapsHas(path, dev, ino string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 5 && fs[1] == "rw-s" && fs[4] == ino && fs[3] == dev {
			return true
		}
	}
	return false
}

// Watched is a rereadable source whose Scan records the hash of every page
// it delivers, so that Changed can count the pages that differ afterwards.
// It is not itself Rereadable: the engine must copy its pages.
type Watched struct {
	Source
	r      Rereadable
	hashes []uint64 // per page in Scan's order; zeroRun marks known-zero pages
}

const zeroRun = 0 // a recorded hash of 0 stands for a page Scan reported as a hole

// Watch wraps s, which must be rereadable.
func Watch(s Source) (*Watched, error) {
	r, ok := Rereader(s)
	if !ok {
		return nil, fmt.Errorf("watch %s: %w", s.Name(), errors.ErrUnsupported)
	}
	return &Watched{Source: s, r: r}, nil
}

func (w *Watched) Scan(sink Sink) error { return w.Source.Scan(&watchSink{Sink: sink, w: w}) }

type watchSink struct {
	Sink
	w *Watched
}

func (s *watchSink) Pages(b []byte) error {
	for off := 0; off+PageSize <= len(b); off += PageSize {
		h := pageindex.Hash(b[off : off+PageSize])
		if h == zeroRun {
			h = 1 // keep 0 for holes (a real xxh3 of 0 is one in 2^64)
		}
		s.w.hashes = append(s.w.hashes, h)
	}
	return s.Sink.Pages(b)
}

func (s *watchSink) Zeros(n uint64) error {
	for i := uint64(0); i < n; i++ {
		s.w.hashes = append(s.w.hashes, zeroRun)
	}
	return s.Sink.Zeros(n)
}

// Changed re-reads every page and returns how many differ from what Scan
// delivered: the pages that changed while (or since) they were read.
func (w *Watched) Changed() (int64, error) {
	buf := make([]byte, PageSize)
	var n int64
	for i, h := range w.hashes {
		if err := w.r.ReadPage(int64(i), buf); err != nil {
			if errors.Is(err, ErrChanged) {
				n += int64(len(w.hashes) - i) // shrunk: the rest is gone
				break
			}
			return n, err
		}
		now := pageindex.Hash(buf)
		if now == zeroRun {
			now = 1
		}
		if h == zeroRun {
			if !pageindex.IsZero(buf) {
				n++
			}
		} else if now != h {
			n++
		}
	}
	return n, nil
}
