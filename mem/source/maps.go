package source

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mapping is one line of /proc/PID/maps.
type Mapping struct {
	Start, End uint64
	Perms      string // "rw-p"
	Offset     uint64
	Inode      uint64
	Path       string // "", "[heap]", "/usr/lib/...", "[anon:name]"...
}

// Anonymous reports whether the mapping has no backing file.
func (m Mapping) Anonymous() bool {
	return m.Inode == 0 && (m.Path == "" || m.Path == "[heap]" || m.Path == "[stack]" ||
		strings.HasPrefix(m.Path, "[anon:") || strings.HasPrefix(m.Path, "[stack:"))
}

// ParseMaps parses the text of /proc/PID/maps.
func ParseMaps(r io.Reader) ([]Mapping, error) {
	var out []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		m, err := parseMapsLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("parse maps line %d %q: %w", n, sc.Text(), err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read maps: %w", err)
	}
	return out, nil
}

func parseMapsLine(line string) (Mapping, error) {
	// start-end perms offset dev inode [path]; the path may contain spaces.
	f := strings.Fields(line)
	if len(f) < 5 {
		return Mapping{}, ErrCorrupt
	}
	var m Mapping
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return m, ErrCorrupt
	}
	var err error
	if m.Start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return m, ErrCorrupt
	}
	if m.End, err = strconv.ParseUint(hi, 16, 64); err != nil || m.End < m.Start {
		return m, ErrCorrupt
	}
	if len(f[1]) != 4 {
		return m, ErrCorrupt
	}
	m.Perms = f[1]
	if m.Offset, err = strconv.ParseUint(f[2], 16, 64); err != nil {
		return m, ErrCorrupt
	}
	if m.Inode, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return m, ErrCorrupt
	}
	if len(f) > 5 {
		// Keep the path's own spacing: cut after the fifth field.
		rest := line
		for i := 0; i < 5; i++ {
			rest = strings.TrimLeft(rest, " \t")
			j := strings.IndexAny(rest, " \t")
			if j < 0 {
				rest = ""
				break
			}
			rest = rest[j:]
		}
		m.Path = strings.TrimLeft(rest, " \t")
	}
	return m, nil
}

// selectMapping decides whether a mapping is read and, if not, why.
func selectMapping(m Mapping, fileBacked bool) (read bool, skipReason string) {
	switch m.Path {
	case "[vvar]", "[vvar_vclock]", "[vsyscall]":
		return false, "kernel mapping, not readable"
	}
	if m.Perms[0] != 'r' {
		return false, "not readable (" + m.Perms + ")"
	}
	if m.Anonymous() || (m.Perms[1] == 'w' && m.Perms[3] == 'p') {
		return true, ""
	}
	if fileBacked {
		return true, ""
	}
	return false, "" // file-backed, not selected: not a skip
}
