package source

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseMaps(f *testing.F) {
	f.Add("55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0 [heap]\n7f00-7f10 r--p 0 08:01 12 /lib/x y\n")
	f.Add("0-0 ---- 0 0 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMaps(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.End < m.Start || len(m.Perms) != 4 {
				t.Fatalf("accepted a bad mapping %+v", m)
			}
			if ok, why := selectMapping(m, true); ok && why != "" {
				t.Fatalf("mapping %+v both read and skipped (%s)", m, why)
			}
		}
	})
}

// FuzzELFCore feeds arbitrary bytes as a core file: an error or a scan
// whose pages match its regions, never a panic.
func FuzzELFCore(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/exe"); err == nil && len(b) > 4096 {
		core := append([]byte(nil), b[:4096]...)
		core[16] = 4 // ET_CORE
		f.Add(core)
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "core")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenELFCore(p)
		if err != nil {
			return
		}
		defer s.Close()
		var total uint64
		for _, r := range s.Regions() {
			if r.Pages() > 1<<16 { // keep the fuzzer's scans small
				return
			}
			total += r.Pages()
		}
		var c countPages
		if err := s.Scan(&c); err == nil && c.n != total {
			t.Fatalf("scan gave %d pages, regions say %d", c.n, total)
		}
	})
}

type countPages struct{ n uint64 }

func (c *countPages) Region(Region) error  { return nil }
func (c *countPages) Pages(b []byte) error { c.n += uint64(len(b) / PageSize); return nil }
func (c *countPages) Zeros(n uint64) error { c.n += n; return nil }
