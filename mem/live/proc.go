package live

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/vmux/vmux/mem/source"
)

// ErrGone means the process exited (or its PID now names another).
var ErrGone = errors.New("process exited")

// procInfo is what the engine reads about a process from /proc.
type procInfo struct {
	start uint64 // start time in clock ticks (field 22 of stat)
	uid   int
	comm  string
	rss   int64 // VmRSS bytes
	anon  int64 // RssAnon bytes
}

// readProc reads /proc/PID/stat and /proc/PID/status.
func readProc(pid int) (procInfo, error) {
	var pi procInfo
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) {
		return pi, ErrGone
	}
	if err != nil {
		return pi, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return pi, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return pi, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return pi, ErrGone
	}
	if pi.start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return pi, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if errors.Is(err, fs.ErrNotExist) {
		return pi, ErrGone
	}
	if err != nil {
		return pi, err
	}
	pi.uid = -1
	sc := bufio.NewScanner(bytes.NewReader(st))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			pi.comm = v
		case "Uid":
			if fs := strings.Fields(v); len(fs) > 0 {
				pi.uid, _ = strconv.Atoi(fs[0])
			}
		case "VmRSS":
			pi.rss = kb(v)
		case "RssAnon":
			pi.anon = kb(v)
		}
	}
	if pi.uid < 0 {
		return pi, ErrGone
	}
	return pi, nil
}

func kb(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	return n * 1024
}

// maps reads /proc/PID/maps.
func maps(pid int) ([]source.Mapping, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrGone
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return source.ParseMaps(f)
}

// manageable reports whether a mapping's pages can be taken out of the
// process and rebuilt on fault: private, anonymous, readable and writable
// (userfaultfd MISSING mode and UFFDIO_MOVE need that), not a stack (hot,
// and growing down).
func manageable(m source.Mapping) bool {
	if !m.Anonymous() || m.Perms != "rw-p" {
		return false
	}
	return !strings.HasPrefix(m.Path, "[stack")
}

// children lists the children of every thread of pid.
func children(pid int) []int {
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
