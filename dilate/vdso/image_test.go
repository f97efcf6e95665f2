package vdso

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

// TestImageReproducible rebuilds the image with the committed script and
// compiler flags and requires the committed bytes.
func TestImageReproducible(t *testing.T) {
	testutil.MustHaveCommand(t, "gcc")
	out := filepath.Join(t.TempDir(), "vdso.so")
	cmd := exec.Command("./build.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Image()) {
		t.Fatalf("rebuilt image (%d bytes) differs from the committed vdso.so (%d bytes): run `go generate ./dilate/vdso` and commit vdso.so", len(got), len(Image()))
	}
}

// TestImageShape checks what glibc's and Go's vDSO parsers rely on and
// what the mapping needs: one R+X PT_LOAD from offset 0, PT_DYNAMIC, the
// soname, both hash tables, LINUX_2.6 versions, no relocations, no TLS, no
// undefined symbols, no interpreter, no writable segment.
func TestImageShape(t *testing.T) {
	img := Image()
	if len(img) != ImageSize || ImageSize%PageSize != 0 {
		t.Fatalf("image is %d bytes, ImageSize %d", len(img), ImageSize)
	}
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != elf.ET_DYN || f.Machine != elf.EM_X86_64 {
		t.Fatalf("type %v machine %v", f.Type, f.Machine)
	}
	var loads int
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			loads++
			if p.Off != 0 || p.Vaddr != 0 || p.Flags != elf.PF_R|elf.PF_X || p.Filesz != p.Memsz || p.Memsz > ImageSize {
				t.Errorf("PT_LOAD %+v: want offset 0, vaddr 0, R+X, file == memory, within the image", p.ProgHeader)
			}
		case elf.PT_DYNAMIC:
		default:
			t.Errorf("unexpected program header %v", p.Type)
		}
	}
	if loads != 1 {
		t.Errorf("%d PT_LOAD, want 1", loads)
	}
	if so, _ := f.DynString(elf.DT_SONAME); len(so) != 1 || so[0] != "linux-vdso.so.1" {
		t.Errorf("soname %v", so)
	}
	for _, tag := range []elf.DynTag{elf.DT_HASH, elf.DT_GNU_HASH, elf.DT_VERSYM, elf.DT_VERDEF, elf.DT_SYMTAB, elf.DT_STRTAB} {
		if v, err := f.DynValue(tag); err != nil || len(v) == 0 {
			t.Errorf("missing %v", tag)
		}
	}
	for _, tag := range []elf.DynTag{elf.DT_RELA, elf.DT_REL, elf.DT_JMPREL, elf.DT_TEXTREL, elf.DT_NEEDED, elf.DT_INIT, elf.DT_FINI} {
		if v, _ := f.DynValue(tag); len(v) != 0 {
			t.Errorf("has %v: the vDSO is never relocated or initialised", tag)
		}
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, n := range []string{"clock_gettime", "gettimeofday", "time", "clock_getres", "getcpu", "getrandom"} {
		want[n], want["__vdso_"+n] = true, true
	}
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF {
			t.Errorf("undefined symbol %s (libc or stack protector leaked in?)", s.Name)
		}
		if elf.ST_TYPE(s.Info) == elf.STT_TLS {
			t.Errorf("TLS symbol %s", s.Name)
		}
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			if s.Version != "LINUX_2.6" {
				t.Errorf("%s has version %q, want LINUX_2.6", s.Name, s.Version)
			}
			delete(want, s.Name)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing symbols %v", want)
	}
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_WRITE != 0 && s.Name != ".dynamic" || s.Flags&elf.SHF_TLS != 0 || s.Type == elf.SHT_RELA {
			t.Errorf("section %s: flags %v type %v", s.Name, s.Flags, s.Type)
		}
	}
}

// TestParseVDSOAgrees runs ParseVDSO (dynamic segment, DT_HASH) against
// debug/elf (section headers) on this kernel's vDSO and on the image, and
// against glibc's own loader (dlopen + dlvsym, DT_GNU_HASH) on the image.
func TestParseVDSOAgrees(t *testing.T) {
	for name, img := range map[string][]byte{"kernel": realVDSO(t), "image": Image()} {
		got, err := ParseVDSO(img)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f, err := elf.NewFile(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		syms, _ := f.DynamicSymbols()
		ref := map[string]uint64{}
		for _, s := range syms {
			if s.Version == "LINUX_2.6" && strings.HasPrefix(s.Name, "__vdso_") {
				ref[s.Name] = s.Value - f.Progs[0].Vaddr + f.Progs[0].Off
			}
		}
		for n, v := range map[string]uint64{"__vdso_clock_gettime": got.ClockGettime, "__vdso_gettimeofday": got.Gettimeofday,
			"__vdso_time": got.Time, "__vdso_clock_getres": got.ClockGetres, "__vdso_getcpu": got.Getcpu, "__vdso_getrandom": got.Getrandom} {
			if ref[n] != v {
				t.Errorf("%s: %s at %#x, debug/elf says %#x", name, n, v, ref[n])
			}
		}
		if got.ClockGettime == 0 || got.Gettimeofday == 0 || got.Time == 0 || got.ClockGetres == 0 || got.Getcpu == 0 {
			t.Errorf("%s: missing symbols %+v", name, got)
		}
	}
	bin := buildHarness(t)
	path := filepath.Join(t.TempDir(), "vdso.so")
	if err := os.WriteFile(path, Image(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "dlcheck", path).CombinedOutput()
	if err != nil {
		t.Fatalf("glibc rejected the image: %v\n%s", err, out)
	}
	img, _ := ImageSymbols()
	want := map[string]uint64{"__vdso_clock_gettime": img.ClockGettime, "__vdso_gettimeofday": img.Gettimeofday,
		"__vdso_time": img.Time, "__vdso_clock_getres": img.ClockGetres, "__vdso_getcpu": img.Getcpu, "__vdso_getrandom": img.Getrandom}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		n, v, _ := strings.Cut(l, " ")
		off, _ := strconv.ParseUint(v, 10, 64)
		if want[n] != off || off == 0 {
			t.Errorf("glibc finds %s at %#x, ParseVDSO at %#x", n, off, want[n])
		}
	}
}

func TestParseVDSOErrors(t *testing.T) {
	img := Image()
	cases := map[string][]byte{
		"empty":     nil,
		"short":     img[:40],
		"not elf":   bytes.Repeat([]byte{1}, 200),
		"elf32":     append(append([]byte{}, img[:4]...), append([]byte{1}, img[5:]...)...),
		"truncated": img[:0x300],
	}
	noDyn := append([]byte{}, img...)
	noDyn[64+56] = 9 // second program header (PT_DYNAMIC) becomes PT_SHLIB
	cases["no PT_DYNAMIC"] = noDyn
	machine := append([]byte{}, img...)
	machine[18] = 3
	cases["i386"] = machine
	for name, b := range cases {
		if _, err := ParseVDSO(b); !errors.Is(err, ErrNotVDSO) {
			t.Errorf("%s: err %v, want ErrNotVDSO", name, err)
		}
	}
	// A valid ELF with the symbol renamed lacks __vdso_clock_gettime.
	renamed := bytes.Replace(append([]byte{}, img...), []byte("__vdso_clock_gettime"), []byte("__vdso_clock_gettimX"), 1)
	if _, err := ParseVDSO(renamed); !errors.Is(err, ErrNoSymbol) {
		t.Errorf("renamed: err %v, want ErrNoSymbol", err)
	}
}

func FuzzParseVDSO(f *testing.F) {
	f.Add(Image())
	f.Add(Image()[:0x400])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseVDSO(b) // must not panic
		if err == nil && (s.ClockGettime == 0 || s.ClockGettime >= uint64(len(b))) {
			t.Fatalf("accepted %+v for %d bytes", s, len(b))
		}
	})
}

func TestProcPage(t *testing.T) {
	s := Symbols{ClockGettime: 0x1000, Gettimeofday: 0x2000, Time: 0, ClockGetres: 4, Getcpu: 5, Getrandom: 6}
	p := ProcPage(s.Add(0x7f0000000000))
	if len(p) != PageSize {
		t.Fatalf("%d bytes", len(p))
	}
	le := func(off int) uint64 {
		var v uint64
		for i := 7; i >= 0; i-- {
			v = v<<8 | uint64(p[off+i])
		}
		return v
	}
	if uint32(le(0)) != ProcMagic || le(0)>>32 != ProcVersion {
		t.Errorf("header %#x", le(0))
	}
	want := map[int]uint64{ProcOffClockGettime: 0x7f0000001000, ProcOffGettimeofday: 0x7f0000002000, ProcOffTime: 0,
		ProcOffClockGetres: 0x7f0000000004, ProcOffGetcpu: 0x7f0000000005, ProcOffGetrandom: 0x7f0000000006}
	for off, w := range want {
		if le(off) != w {
			t.Errorf("offset %d: %#x, want %#x (absent stays 0)", off, le(off), w)
		}
	}
}
