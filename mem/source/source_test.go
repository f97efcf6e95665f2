package source

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
)

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

// collect is a Sink that keeps every region's pages (zero runs as counts, so
// that a process's untouched gigabytes cost nothing).
type collect struct {
	regions []Region
	segs    [][]seg // per region
	zeroRun uint64  // pages announced through Zeros
	calls   int
	onPages func()
}

type seg struct {
	data  []byte // nil: zero pages
	pages uint64
}

func (c *collect) Region(r Region) error {
	c.regions = append(c.regions, r)
	c.segs = append(c.segs, nil)
	return nil
}

func (c *collect) Pages(b []byte) error {
	if len(b)%PageSize != 0 {
		panic("partial page")
	}
	c.calls++
	if c.onPages != nil {
		c.onPages()
	}
	c.segs[len(c.segs)-1] = append(c.segs[len(c.segs)-1], seg{bytes.Clone(b), uint64(len(b) / PageSize)})
	return nil
}

func (c *collect) Zeros(n uint64) error {
	c.zeroRun += n
	c.segs[len(c.segs)-1] = append(c.segs[len(c.segs)-1], seg{nil, n})
	return nil
}

// pages returns how many pages region i received.
func (c *collect) pages(i int) uint64 {
	var n uint64
	for _, s := range c.segs[i] {
		n += s.pages
	}
	return n
}

// bytes returns region i's content from byte offset off, n bytes.
func (c *collect) bytes(i int, off, n uint64) []byte {
	out := make([]byte, 0, n)
	var pos uint64
	for _, s := range c.segs[i] {
		end := pos + s.pages*PageSize
		if end > off && pos < off+n {
			lo, hi := max(off, pos)-pos, min(off+n, end)-pos
			if s.data == nil {
				out = append(out, make([]byte, hi-lo)...)
			} else {
				out = append(out, s.data[lo:hi]...)
			}
		}
		pos = end
	}
	return out
}

func TestRawSparseUnaligned(t *testing.T) {
	testutil.CheckFDs(t)
	path := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	head := bytes.Repeat([]byte("vmux"), 2*PageSize/4)
	tail := []byte("tail bytes, not a whole page")
	if _, err := f.WriteAt(head, 0); err != nil {
		t.Fatal(err)
	}
	tailOff := int64(64 << 20) // a 64 MiB hole between head and tail
	if _, err := f.WriteAt(tail, tailOff); err != nil {
		t.Fatal(err)
	}
	f.Close()
	size := tailOff + int64(len(tail))

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Kind() != KindRaw || s.FileSize() != size || s.Domain() != "file:"+path {
		t.Fatalf("kind %v size %d domain %q", s.Kind(), s.FileSize(), s.Domain())
	}
	var c collect
	if err := s.Scan(&c); err != nil {
		t.Fatal(err)
	}
	if len(c.regions) != 1 || c.regions[0].Len != uint64(size) {
		t.Fatalf("regions %+v, want one of %d bytes", c.regions, size)
	}
	if c.pages(0) != c.regions[0].Pages() {
		t.Fatalf("got %d pages, want %d", c.pages(0), c.regions[0].Pages())
	}
	got := c.bytes(0, 0, c.pages(0)*PageSize)
	want := make([]byte, len(got))
	copy(want, head)
	copy(want[tailOff:], tail)
	if !bytes.Equal(got, want) {
		t.Fatal("content differs")
	}
	checkReread(t, s, &c)
	// The hole must have been skipped with SEEK_HOLE, not read.
	if c.zeroRun < (60<<20)/PageSize {
		t.Fatalf("only %d pages reported as holes", c.zeroRun)
	}
}

func TestRawEmptyAndErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	s, err := Open(empty, Options{Domain: "tenant-a"})
	if err != nil {
		t.Fatal(err)
	}
	var c collect
	if err := s.Scan(&c); err != nil || len(c.regions) != 0 || s.Domain() != "tenant-a" {
		t.Fatalf("empty file: err %v regions %d domain %q", err, len(c.regions), s.Domain())
	}
	s.Close()
	if _, err := Open(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("directory: %v", err)
	}
	for _, spec := range []string{"", "pid:", "pid:x", "pid:-3"} {
		if _, err := Open(spec, Options{}); !errors.Is(err, ErrBadSpec) {
			t.Fatalf("%q: %v", spec, err)
		}
	}
}

func TestRawShrinksWhileRead(t *testing.T) {
	testutil.CheckFDs(t)
	path := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(path, bytes.Repeat([]byte{7}, 3*ChunkSize), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenRaw(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect{onPages: func() { os.Truncate(path, ChunkSize) }}
	if err := s.Scan(&c); !errors.Is(err, ErrChanged) {
		t.Fatalf("scan of a shrinking file: %v, want ErrChanged", err)
	}
}

func TestFirecrackerRegions(t *testing.T) {
	testutil.CheckFDs(t)
	dir := t.TempDir()
	mem := filepath.Join(dir, "mem")
	data := make([]byte, 10*PageSize)
	for i := range data {
		data[i] = byte(i / PageSize)
	}
	os.WriteFile(mem, data, 0o600)
	js := filepath.Join(dir, "regions.json")
	os.WriteFile(js, []byte(`[{"base_host_virt_addr":4096000,"size":16384,"offset":8192,"page_size":4096}]`), 0o600)
	s, err := Open("fc:"+mem+","+js, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var c collect
	if err := s.Scan(&c); err != nil {
		t.Fatal(err)
	}
	if len(c.regions) != 3 || c.regions[1].Start != 4096000 || c.regions[1].Len != 16384 || c.regions[0].Name != "uncovered" {
		t.Fatalf("regions %+v", c.regions)
	}
	var all []byte
	for i := range c.regions {
		all = append(all, c.bytes(i, 0, c.pages(i)*PageSize)...)
	}
	if !bytes.Equal(all, data) {
		t.Fatal("content differs")
	}
	checkReread(t, s, &c)
	os.WriteFile(js, []byte(`[{"size":16384,"offset":40960}]`), 0o600)
	if _, err := Open("fc:"+mem+","+js, Options{}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("region past the end: %v", err)
	}
	os.WriteFile(js, []byte(`[{"size":1`), 0o600)
	if _, err := Open("fc:"+mem+","+js, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad JSON: %v", err)
	}
}

func TestParseMaps(t *testing.T) {
	in := `55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]
7f1c2e000000-7f1c2e021000 rw-p 00000000 00:00 0 
7f1c30000000-7f1c30022000 r--p 00000000 08:01 1234                       /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c30100000-7f1c30101000 rw-p 00022000 08:01 1234                       /usr/lib/with space/lib.so
7f1c30200000-7f1c30204000 ---p 00000000 00:00 0 
7ffd1c5f1000-7ffd1c5f5000 r--p 00000000 00:00 0                          [vvar]
`
	ms, err := ParseMaps(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 6 || ms[3].Path != "/usr/lib/with space/lib.so" || ms[0].Path != "[heap]" || ms[1].Path != "" {
		t.Fatalf("%+v", ms)
	}
	want := []struct {
		read bool
		skip bool
	}{{true, false}, {true, false}, {false, false}, {true, false}, {false, true}, {false, true}}
	for i, m := range ms {
		ok, why := selectMapping(m, false)
		if ok != want[i].read || (why != "") != want[i].skip {
			t.Errorf("mapping %d %q: read %v skip %q", i, m.Path, ok, why)
		}
	}
	if ok, _ := selectMapping(ms[2], true); !ok {
		t.Error("file-backed mapping not read with fileBacked")
	}
	for _, bad := range []string{"zz-10 rw-p 0 00:00 0", "10-5 rw-p 0 00:00 0", "10-20 rw 0 00:00 0", "10-20"} {
		if _, err := ParseMaps(strings.NewReader(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
