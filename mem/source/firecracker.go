package source

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/vmux/vmux/internal/safefile"
)

// fcRegion is one entry of the regions JSON Firecracker sends to a page-fault
// handler (and that users may save beside a snapshot memory file).
type fcRegion struct {
	Base   *uint64 `json:"base_host_virt_addr"`
	Size   *uint64 `json:"size"`
	Offset *uint64 `json:"offset"`
}

// OpenFirecracker opens a Firecracker snapshot memory file. Without a regions
// file it is one region, like a raw image. With one (a JSON array of
// {"base_host_virt_addr", "size", "offset", ...}), every entry is a region
// named after its base address, and file bytes no entry covers become regions
// named "uncovered" (they are memory all the same).
func OpenFirecracker(memPath, regionsPath string) (Source, error) {
	f, st, err := openFile(memPath)
	if err != nil {
		return nil, err
	}
	size := st.Size()
	s := &fileSource{f: f, st: st, path: memPath, kind: KindFirecracker, size: size}
	if regionsPath == "" {
		if size > 0 {
			s.regions = []Region{{Name: "guest memory", Len: uint64(size), FileLen: uint64(size)}}
		}
		return s, nil
	}
	if err := s.loadFCRegions(regionsPath); err != nil {
		f.Close()
		return nil, &Error{Source: regionsPath, Op: "read Firecracker regions", Err: err}
	}
	return s, nil
}

// maxFCRegions bounds a Firecracker regions file (a few entries per VM; a
// megabyte is thousands).
const maxFCRegions = 1 << 20

func (s *fileSource) loadFCRegions(path string) error {
	b, err := safefile.ReadRegular(path, maxFCRegions)
	if err != nil {
		return err
	}
	var rs []fcRegion
	if err := json.Unmarshal(b, &rs); err != nil {
		return fmt.Errorf("parse JSON: %v: %w", err, ErrCorrupt)
	}
	for i, r := range rs {
		if r.Size == nil || r.Offset == nil {
			return fmt.Errorf("entry %d lacks \"size\" or \"offset\": %w", i, ErrCorrupt)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return *rs[i].Offset < *rs[j].Offset })
	var pos uint64
	size := uint64(s.size)
	for _, r := range rs {
		off, n := *r.Offset, *r.Size
		if off < pos {
			return fmt.Errorf("regions overlap at offset %d: %w", off, ErrCorrupt)
		}
		if off > size || n > size-off {
			return fmt.Errorf("region at offset %d of %d bytes ends past the %d-byte memory file: %w", off, n, size, ErrTruncated)
		}
		if off > pos {
			s.regions = append(s.regions, Region{Name: "uncovered", Start: pos, Len: off - pos, FileOff: int64(pos), FileLen: off - pos})
		}
		name := fmt.Sprintf("region at offset %#x", off)
		var start uint64
		if r.Base != nil {
			start = *r.Base
			name = fmt.Sprintf("guest region %#x", start)
		}
		if n > 0 {
			s.regions = append(s.regions, Region{Name: name, Start: start, Len: n, FileOff: int64(off), FileLen: n})
		}
		pos = off + n
	}
	if pos < size {
		s.regions = append(s.regions, Region{Name: "uncovered", Start: pos, Len: size - pos, FileOff: int64(pos), FileLen: size - pos})
	}
	return nil
}
