package ksm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Dir is where the kernel exposes KSM.
var Dir = "/sys/kernel/mm/ksm"

// ErrUnavailable means the kernel has no KSM.
var ErrUnavailable = errors.New("KSM is not available (no /sys/kernel/mm/ksm)")

// Stats are the kernel's KSM counters.
type Stats struct {
	PagesSharing  int64 `json:"pages_sharing"`  // pages that map a merged page (the savings)
	PagesShared   int64 `json:"pages_shared"`   // merged pages kept
	ZeroPages     int64 `json:"ksm_zero_pages"` // pages merged into the zero page (use_zero_pages)
	GeneralProfit int64 `json:"general_profit"` // bytes saved net of KSM's metadata
	FullScans     int64 `json:"full_scans"`
	PagesUnshared int64 `json:"pages_unshared"`
	PagesVolatile int64 `json:"pages_volatile"`
}

// SavedBytes is what KSM saved, before its metadata: (sharing + zero) pages.
func (s Stats) SavedBytes() int64 { return (s.PagesSharing + s.ZeroPages) * 4096 }

func readInt(name string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(Dir, name))
	if err != nil {
		return 0, fmt.Errorf("read KSM %s: %w", name, err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse KSM %s %q: %w", name, b, err)
	}
	return v, nil
}

// Read returns the current counters.
func Read() (Stats, error) {
	var s Stats
	for _, f := range []struct {
		name string
		v    *int64
	}{{"pages_sharing", &s.PagesSharing}, {"pages_shared", &s.PagesShared}, {"ksm_zero_pages", &s.ZeroPages},
		{"general_profit", &s.GeneralProfit}, {"full_scans", &s.FullScans}, {"pages_unshared", &s.PagesUnshared},
		{"pages_volatile", &s.PagesVolatile}} {
		v, err := readInt(f.name)
		if err != nil {
			return s, err
		}
		*f.v = v
	}
	return s, nil
}

// Settings are saved values of KSM knobs, to restore.
type Settings struct {
	names  []string
	values map[string]string
}

// Tune saves the current value of every knob in set, then writes the new
// values ("run" last, so the scanner starts with the new settings). The
// returned Settings restore what was there; they are valid even on error,
// covering what was changed.
func Tune(set map[string]string) (*Settings, error) {
	if _, err := os.Stat(Dir); err != nil {
		return nil, fmt.Errorf("tune KSM: %w (%w)", ErrUnavailable, err)
	}
	if err := Recover(); err != nil {
		return nil, err
	}
	s := &Settings{values: map[string]string{}}
	names := make([]string, 0, len(set))
	for k := range set {
		if k != "run" {
			names = append(names, k)
		}
	}
	if _, ok := set["run"]; ok {
		names = append(names, "run")
	}
	for _, k := range names {
		b, err := os.ReadFile(filepath.Join(Dir, k))
		if err != nil {
			return s, fmt.Errorf("save KSM %s: %w", k, err)
		}
		old := strings.TrimSpace(string(b))
		s.names = append(s.names, k)
		s.values[k] = old
		// Journal the old value before changing it: a vmux killed from
		// here on is undone by the next Tune.
		if err := s.save(); err != nil {
			s.names = s.names[:len(s.names)-1]
			return s, err
		}
		if err := os.WriteFile(filepath.Join(Dir, k), []byte(set[k]), 0); err != nil {
			return s, fmt.Errorf("set KSM %s=%s: %w", k, set[k], err)
		}
	}
	return s, nil
}

// Restore writes every saved value back, "run" first (so the scanner stops
// before its speed changes). It returns the first error but tries them all.
func (s *Settings) Restore() error {
	if s == nil {
		return nil
	}
	var first error
	for i := len(s.names) - 1; i >= 0; i-- {
		k := s.names[i]
		if err := os.WriteFile(filepath.Join(Dir, k), []byte(s.values[k]), 0); err != nil && first == nil {
			first = fmt.Errorf("restore KSM %s=%s: %w", k, s.values[k], err)
		}
	}
	s.names = nil
	if first == nil {
		if err := os.Remove(Journal); err != nil && !errors.Is(err, os.ErrNotExist) {
			first = fmt.Errorf("remove KSM journal: %w", err)
		}
	}
	return first
}

// Converge waits until KSM has done at least minScans more full scans and
// pages_sharing changed by less than 1% over the last full scan, or until
// ctx ends (then it returns the last counters with ctx's error).
func Converge(ctx context.Context, minScans int64, poll time.Duration) (Stats, error) {
	s0, err := Read()
	if err != nil {
		return s0, err
	}
	last, lastScan := s0, s0.FullScans
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(poll):
		}
		s, err := Read()
		if err != nil {
			return s, err
		}
		if s.FullScans > lastScan {
			d := s.PagesSharing - last.PagesSharing
			stable := d*100 <= last.PagesSharing && -d*100 <= last.PagesSharing
			if s.FullScans-s0.FullScans >= minScans && stable {
				return s, nil
			}
			last, lastScan = s, s.FullScans
		}
	}
}

// MergeAny reports whether process pid is marked mergeable as a whole
// (prctl PR_SET_MEMORY_MERGE), from /proc/PID/ksm_stat.
func MergeAny(pid int) (bool, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ksm_stat", pid))
	if err != nil {
		return false, fmt.Errorf("read ksm_stat of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ksm_merge_any:"); ok {
			return strings.TrimSpace(v) == "yes", nil
		}
	}
	return false, fmt.Errorf("read ksm_stat of %d: no ksm_merge_any line (kernel older than 6.7?)", pid)
}
