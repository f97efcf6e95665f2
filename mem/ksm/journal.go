package ksm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vmux/vmux/rt/guard"
)

// Journal records the KSM values a running vmux changed, so that a later vmux
// can put them back when the one that changed them died without restoring
// (SIGKILL, OOM, power loss leaves /run empty anyway). Tests point it elsewhere.
var Journal = "/run/vmux/ksm-restore.json"

// ErrBusy means another live vmux process has KSM tuned.
var ErrBusy = errors.New("KSM is tuned by another running vmux")

type journal struct {
	PID    int               `json:"pid"`
	Start  string            `json:"start"` // the owner's start time, against PID reuse
	Names  []string          `json:"names"`
	Values map[string]string `json:"values"`
}

// startTime returns field 22 of /proc/PID/stat (start time in clock ticks),
// or "" when the process does not exist or is dead (a zombie whose parent
// has not reaped it yet: a vmux just killed by SIGKILL, which is when a
// guard replays the journal).
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // comm may hold spaces
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return ""
	}
	return f[19]
}

// GuardHook is the rt/guard hook that replays the journal of a vmux that
// died: a guarded owner asks for it before it tunes KSM.
const GuardHook = "ksm"

func init() { guard.RegisterHook(GuardHook, RecoverStale) }

// RecoverStale is Recover for every vmux command's start: it costs one
// stat when there is no journal, and a journal whose owner still runs is
// left alone (nil, not ErrBusy). Only root can restore.
func RecoverStale() error {
	if os.Geteuid() != 0 {
		return nil
	}
	if _, err := os.Stat(Journal); err != nil {
		return nil
	}
	if err := Recover(); err != nil && !errors.Is(err, ErrBusy) {
		return err
	}
	return nil
}

// Recover restores the KSM values a dead vmux left in the journal, and
// fails with ErrBusy if the journal's owner is alive.
func Recover() error {
	b, err := os.ReadFile(Journal)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read KSM journal: %w", err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		// A torn journal cannot be replayed; drop it rather than block KSM forever.
		return os.Remove(Journal)
	}
	if j.PID != os.Getpid() && startTime(j.PID) == j.Start && j.Start != "" {
		return fmt.Errorf("tune KSM: %w (pid %d); wait for it or stop it", ErrBusy, j.PID)
	}
	s := &Settings{names: j.Names, values: j.Values}
	return s.Restore()
}

// save writes the journal for s atomically (temp file, rename).
func (s *Settings) save() error {
	j := journal{PID: os.Getpid(), Start: startTime(os.Getpid()), Names: s.names, Values: s.values}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(Journal), 0o755); err != nil {
		return fmt.Errorf("write KSM journal: %w", err)
	}
	tmp := Journal + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write KSM journal: %w", err)
	}
	if err := os.Rename(tmp, Journal); err != nil {
		return fmt.Errorf("write KSM journal: %w", err)
	}
	return nil
}
