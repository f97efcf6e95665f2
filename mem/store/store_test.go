package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/source"
	"github.com/vmux/vmux/mem/source/sourcetest"
	"github.com/vmux/vmux/rt/reexec"
)

// killRole packs into a directory and is killed midway (killHelper).
const killRole = "store-test-killed-pack"

func init() {
	reexec.Register(killRole, func(args []string) int { killHelper(args[0]); return 1 })
}

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

// killHelper packs an image into dir/store.vmx and, with everything but the
// header written, says so and waits to be killed.
func killHelper(dir string) {
	beforeHeader = func(tmp string) {
		fmt.Println("mid", tmp)
		select {}
	}
	var t testing.T
	pack(&t, dir, mem.Config{}, image(&t, dir, 12, 200))
	os.Exit(3) // not reached
}

// image writes a raw image with identical, similar, compressible, random
// and zero pages, a hole, and a size that is not page-aligned.
func image(t testing.TB, dir string, seed uint64, pages int) string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 2))
	base := make([]byte, PageSize)
	for i := range base {
		base[i] = byte(r.Uint32())
	}
	b := make([]byte, pages*PageSize+123)
	for p := 0; p < pages; p++ {
		pg := b[p*PageSize : (p+1)*PageSize]
		switch p % 5 {
		case 0:
			copy(pg, base)
		case 1:
			copy(pg, base)
			for k := 0; k < 10; k++ {
				pg[r.IntN(PageSize)] = byte(r.Uint32())
			}
		case 2:
			copy(pg, bytes.Repeat([]byte(fmt.Sprintf("line %d of text; ", p)), PageSize/16))
		case 3:
			for i := range pg {
				pg[i] = byte(r.Uint32())
			}
		}
	}
	copy(b[len(b)-123:], "an unaligned tail")
	path := filepath.Join(dir, fmt.Sprintf("img%d", seed))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// First half, a 16 MiB hole, second half.
	half := pages / 2 * PageSize
	f.Write(b[:half])
	f.WriteAt(b[half:], int64(half)+16<<20)
	f.Close()
	return path
}

// pack analyzes specs and writes a store; it returns the store path and the
// engine result.
func pack(t testing.TB, dir string, cfg mem.Config, specs ...string) (string, *mem.Result) {
	t.Helper()
	e, err := mem.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var metas []Meta
	for _, sp := range specs {
		s, err := source.Open(sp, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := Ingest(context.Background(), e, s, nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		metas = append(metas, m)
	}
	res, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "store.vmx")
	if _, err := Write(context.Background(), path, res, metas); err != nil {
		t.Fatal(err)
	}
	return path, res
}

func noTemps(t testing.TB, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temp file left behind: %s", e.Name())
		}
	}
}

func TestRoundTripFiles(t *testing.T) {
	testutil.CheckFDs(t)
	for _, cfg := range []mem.Config{{}, {Detector: "hsd21", Codec: "zstd"}, {Codec: "none", Detector: "none"}, {CrossDomain: true}} {
		t.Run(fmt.Sprintf("%s-%s-%v", cfg.Detector, cfg.Codec, cfg.CrossDomain), func(t *testing.T) {
			dir := t.TempDir()
			a, b := image(t, dir, 1, 300), image(t, dir, 2, 200)
			path, res := pack(t, dir, cfg, a, b)
			noTemps(t, dir)
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Every page reads back as the engine decodes it.
			got, want := make([]byte, PageSize), make([]byte, PageSize)
			for i, src := range s.Sources() {
				for p := uint64(0); p < src.Pages; p++ {
					if err := s.ReadPage(i, p, got); err != nil {
						t.Fatal(err)
					}
					if err := res.Decode(i, int64(p), want); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("page %d of source %d differs", p, i)
					}
				}
			}
			rep, err := s.Verify(nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.ZeroRunPages < (16<<20)/PageSize {
				t.Fatalf("the 16 MiB hole is not a zero run: %+v", rep)
			}
			out := t.TempDir()
			outs, err := s.Unpack(context.Background(), out, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, orig := range []string{a, b} {
				wantB, _ := os.ReadFile(orig)
				gotB, err := os.ReadFile(outs[i].Path)
				if err != nil || !bytes.Equal(gotB, wantB) {
					t.Fatalf("unpacked %s differs from %s (%v)", outs[i].Path, orig, err)
				}
			}
			// Metadata stays small next to the memory stored.
			fi, _ := os.Stat(path)
			if st := res.Stats.Total; fi.Size() > st.TotalBytes {
				t.Fatalf("store of %d bytes for %d bytes of memory", fi.Size(), st.TotalBytes)
			}
		})
	}
}

func TestRoundTripProcessAndCore(t *testing.T) {
	testutil.MustRoot(t)
	gcc := testutil.MustHaveCommand(t, "gcc")
	gc := testutil.MustHaveCommand(t, "gcore")
	dir := t.TempDir()
	f1 := sourcetest.Start(t, 11)
	f2 := sourcetest.StartC(t, gcc, 11)
	core := filepath.Join(dir, "core")
	if out, err := runTimeout(gc, "-o", core, fmt.Sprint(f2.PID())); err != nil {
		t.Fatalf("gcore: %v\n%s", err, out)
	}
	core = fmt.Sprintf("%s.%d", core, f2.PID())
	path, _ := pack(t, dir, mem.Config{}, fmt.Sprintf("pid:%d", f1.PID()), core, fmt.Sprintf("pid:%d", f2.PID()))
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Verify(nil); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	outs, err := s.Unpack(context.Background(), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The core comes back byte for byte.
	wantB, _ := os.ReadFile(core)
	if gotB, _ := os.ReadFile(outs[1].Path); !bytes.Equal(gotB, wantB) {
		t.Fatal("unpacked core differs from the gcore file")
	}
	// Each process image holds the filler's pages where its regions file
	// says the data mapping is.
	for _, k := range []struct {
		o    Output
		addr uint64
	}{{outs[0], f1.DataAddr}, {outs[2], f2.DataAddr}} {
		img, _ := os.ReadFile(k.o.Path)
		regs, _ := os.ReadFile(k.o.Regions)
		off, ok := imgOffset(string(regs), k.addr)
		if !ok || off+sourcetest.Pages*PageSize > uint64(len(img)) {
			t.Fatalf("%s: data at %#x not in regions:\n%s", k.o.Path, k.addr, regs)
		}
		if !bytes.Equal(img[off:off+sourcetest.Pages*PageSize], sourcetest.Expected(11)) {
			t.Fatalf("%s: filler pages differ", k.o.Path)
		}
	}
	// Both processes run as one user: same domain, so their identical
	// filler pages are shared across them.
	if a, b := s.Sources()[0].Domain, s.Sources()[2].Domain; a != b {
		t.Fatalf("domains %q and %q", a, b)
	}
}

// imgOffset finds addr in a regions file.
func imgOffset(regs string, addr uint64) (uint64, bool) {
	for _, l := range strings.Split(regs, "\n") {
		var start, end, off uint64
		var perms string
		if _, err := fmt.Sscanf(l, "%x %x %s %x", &start, &end, &perms, &off); err == nil && start <= addr && addr < end {
			return off + addr - start, true
		}
	}
	return 0, false
}

func TestKilledPackLeavesNoValidStore(t *testing.T) {
	dir := t.TempDir()
	cmd := reexec.Command("", killRole, dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "mid ") {
		t.Fatalf("helper said %q", line)
	}
	cmd.Process.Kill()
	cmd.Wait()
	// The store was written to an unnamed file (O_TMPFILE): the kill must
	// leave neither a store nor any temp file, only the source image.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "img12" {
			t.Errorf("a killed pack left %s behind", e.Name())
		}
	}
}

// TestPackTempFile checks that a store is written to an unnamed, owner-only
// file where the file system supports O_TMPFILE (ext4 and tmpfs do).
func TestPackTempFile(t *testing.T) {
	dir := t.TempDir()
	f, named, err := createTemp(dir, filepath.Join(dir, "x.vmx"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if named != "" {
		t.Fatalf("tmpfs/ext4 temp dir should support O_TMPFILE, got named temp %s", named)
	}
	if fi, err := f.Stat(); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store temp file mode %v (%v): process memory must be owner-only", fi.Mode().Perm(), err)
	}
}

func TestCorruptionDetected(t *testing.T) {
	testutil.CheckFDs(t)
	dir := t.TempDir()
	path, _ := pack(t, dir, mem.Config{}, image(t, dir, 3, 200))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.vmx")
	// Flip one byte at many places: every flip is caught by Open or Verify.
	r := rand.New(rand.NewPCG(9, 9))
	for k := 0; k < 300; k++ {
		off := r.IntN(len(data))
		if k < 64 {
			off = k * len(data) / 64
		}
		b := bytes.Clone(data)
		b[off] ^= byte(1 + r.IntN(255))
		os.WriteFile(bad, b, 0o600)
		s, err := Open(bad)
		if err == nil {
			_, err = s.Verify(nil)
			s.Close()
		}
		if err == nil {
			t.Fatalf("flipped byte %d of %d not detected", off, len(data))
		}
	}
	// Truncated copies are refused at Open.
	for _, n := range []int{0, 10, headerSize, len(data) / 2, len(data) - 1} {
		os.WriteFile(bad, data[:n], 0o600)
		if s, err := Open(bad); err == nil {
			s.Close()
			t.Fatalf("store truncated to %d bytes opened", n)
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotStore) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
}

func TestWriteCancelledLeavesNothing(t *testing.T) {
	testutil.CheckFDs(t)
	dir := t.TempDir()
	e, _ := mem.NewEngine(mem.Config{})
	s, err := source.Open(image(t, dir, 4, 100), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Ingest(context.Background(), e, s, nil)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	res, _ := e.Finish()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(dir, "store.vmx")
	if _, err := Write(ctx, path, res, []Meta{m}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled write: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("cancelled write left the store")
	}
	noTemps(t, dir)
}

func FuzzOpenStore(f *testing.F) {
	dir := f.TempDir()
	path, _ := pack(f, dir, mem.Config{}, image(f, dir, 5, 40))
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte("VMUXSTOR"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := OpenReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		s.Verify(nil)
		page := make([]byte, PageSize)
		for i, src := range s.Sources() {
			s.ReadPage(i, src.Pages/2, page)
			for _, r := range src.Residue {
				s.ReadResidue(r)
			}
		}
	})
}

func TestTruncatedWhileOpen(t *testing.T) {
	testutil.CheckFDs(t)
	dir := t.TempDir()
	path, _ := pack(t, dir, mem.Config{Codec: "none", Detector: "none"}, image(t, dir, 8, 400))
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.data == nil {
		t.Fatal("store not mapped")
	}
	if err := os.Truncate(path, headerSize+PageSize); err != nil {
		t.Fatal(err)
	}
	// Pages now lie past the end of the file: errors, never a crash.
	page := make([]byte, PageSize)
	var failed int
	for p := uint64(0); p < s.Sources()[0].Pages; p++ {
		if s.ReadPage(0, p, page) != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no read failed on a truncated store")
	}
	if _, err := s.Verify(nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify of a truncated store: %v", err)
	}
}

func TestReaderPathMatchesMapped(t *testing.T) {
	dir := t.TempDir()
	path, _ := pack(t, dir, mem.Config{}, image(t, dir, 9, 300))
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	data, _ := os.ReadFile(path)
	r, err := OpenReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	a, b := make([]byte, PageSize), make([]byte, PageSize)
	for p := uint64(0); p < m.Sources()[0].Pages; p++ {
		if err := m.ReadPage(0, p, a); err != nil {
			t.Fatal(err)
		}
		if err := r.ReadPage(0, p, b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("page %d differs between the mapped and the reader paths", p)
		}
	}
	if _, err := r.Verify(nil); err != nil {
		t.Fatal(err)
	}
}
