package delta

import (
	"bytes"
	"errors"
	"github.com/vmux/vmux/mem/internal/pagetest"
	"math/rand/v2"
	"testing"
)

const page = 4096

// encodeDeterministicTotal was measured with the encoder stepping one byte per
// miss (before misses were skipped a word at a time).
const encodeDeterministicTotal = 76908

type pair struct {
	name        string
	ref, target []byte
	maxPatch    int // the patch must be at most this long (0: no bound)
}

func pairs(r *rand.Rand) []pair {
	var ps []pair
	base := pagetest.MemoryLike(r)
	edit := func(n int) []byte {
		t := bytes.Clone(base)
		for range n {
			t[r.IntN(page)] ^= byte(1 + r.UintN(255))
		}
		return t
	}
	shifted := func(s int) []byte {
		t := make([]byte, page)
		copy(t[s:], base)
		copy(t[:s], pagetest.Random(r)[:s])
		return t
	}
	ps = append(ps,
		pair{"identical", base, bytes.Clone(base), 8},
		pair{"one-byte", base, edit(1), 16},
		pair{"ten-edits", base, edit(10), 200},
		pair{"shift-8", base, shifted(8), 40},
		pair{"shift-24", base, shifted(24), 60},
		pair{"shift-13", base, shifted(13), 0}, // not word-aligned: exact, not small
		pair{"zero", make([]byte, page), make([]byte, page), 8},
		pair{"same-byte", bytes.Repeat([]byte{0xab}, page), bytes.Repeat([]byte{0xab}, page), 8},
		pair{"zero-to-ff", make([]byte, page), bytes.Repeat([]byte{0xff}, page), 0},
		pair{"random-vs-random", pagetest.Random(r), pagetest.Random(r), 0},
		pair{"empty-ref", nil, pagetest.MemoryLike(r), 0},
		pair{"short-target", base, base[100:111], 0},
		pair{"empty-target", base, nil, 4},
	)
	for k := range 50 {
		ps = append(ps, pair{"random-edits", base, edit(k), 0})
	}
	return ps
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var enc Encoder
	for _, p := range pairs(r) {
		patch, err := enc.Encode(nil, p.ref, p.target, 0)
		if err != nil {
			t.Fatalf("%s: encode: %v", p.name, err)
		}
		if p.maxPatch > 0 && len(patch) > p.maxPatch {
			t.Errorf("%s: patch of %d bytes, want <= %d", p.name, len(patch), p.maxPatch)
		}
		got := make([]byte, len(p.target))
		if err := Decode(got, p.ref, patch); err != nil {
			t.Fatalf("%s: decode: %v", p.name, err)
		}
		if !bytes.Equal(got, p.target) {
			t.Fatalf("%s: round trip differs", p.name)
		}
	}
}

func TestLimit(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	a, b := pagetest.Random(r), pagetest.Random(r)
	if _, err := Encode(nil, a, b, 2048); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("random pages under a 2048-byte limit: err %v, want ErrTooLarge", err)
	}
	c := bytes.Clone(a)
	c[100]++
	patch, err := Encode(nil, a, c, 2048)
	if err != nil || len(patch) > 16 {
		t.Fatalf("one-byte edit: %d bytes, err %v", len(patch), err)
	}
}

func TestDecodeRejects(t *testing.T) {
	ref := bytes.Repeat([]byte{1}, page)
	dst := make([]byte, page)
	good, _ := Encode(nil, ref, ref, 0)
	cases := map[string][]byte{
		"empty":        nil,
		"wrong-length": {0x80, 0x10},                         // target 2048
		"truncated":    good[:len(good)-1],                   // copy displacement missing
		"no-ops":       {0x80, 0x20},                         // 4096 bytes promised, none given
		"zero-length":  {0x80, 0x20, 0x00},                   // op of length 0
		"past-ref":     {0x80, 0x20, 0x81, 0x40, 0x02},       // copy 4096 at displacement +1
		"literal-cut":  {0x80, 0x20, 0x80, 0x40, 1, 2, 3},    // literal 4096, 3 bytes
		"overlong":     {0x80, 0x20, 0x81, 0x40, 0x00, 0x03}, // trailing op past the end
		"huge-varint":  {0x80, 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for name, p := range cases {
		if err := Decode(dst, ref, p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range pairs(r)[:8] {
		patch, _ := Encode(nil, p.ref, p.target, 0)
		f.Add(patch, uint16(len(p.target)))
	}
	ref := pagetest.MemoryLike(r)
	f.Fuzz(func(t *testing.T, patch []byte, n uint16) {
		// guard bytes around dst catch writes past it
		buf := make([]byte, int(n%8192)+64)
		for i := range buf {
			buf[i] = 0xA5
		}
		dst := buf[32 : len(buf)-32]
		err := Decode(dst, ref, patch)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error not ErrCorrupt: %v", err)
		}
		for _, g := range [][]byte{buf[:32], buf[len(buf)-32:]} {
			for _, c := range g {
				if c != 0xA5 {
					t.Fatal("write outside dst")
				}
			}
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello world, hello world"), []byte("hello there, hello world!"))
	f.Fuzz(func(t *testing.T, ref, target []byte) {
		patch, err := Encode(nil, ref, target, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(target))
		if err := Decode(got, ref, patch); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, target) {
			t.Fatal("round trip differs")
		}
	})
}

// BenchmarkDecode: rebuild a memory-like page with 1% of its words changed,
// beside a 4 KiB copy (baseline).
func BenchmarkDecode(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 7))
	ref := pagetest.MemoryLike(r)
	target := bytes.Clone(ref)
	for range 40 {
		i := r.IntN(page/8) * 8
		target[i] ^= byte(1 + r.UintN(255))
		target[i+1] ^= byte(r.UintN(256))
	}
	patch, _ := Encode(nil, ref, target, 0)
	dst := make([]byte, page)
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(page)
		for b.Loop() {
			if err := Decode(dst, ref, patch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(patch)), "patch-bytes")
	})
	b.Run("memcpy-baseline", func(b *testing.B) {
		b.SetBytes(page)
		for b.Loop() {
			copy(dst, ref)
		}
	})
	var enc Encoder
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(page)
		out := make([]byte, 0, 2*page)
		for b.Loop() {
			_, _ = enc.Encode(out, ref, target, 2048)
		}
	})
}

// EncodeKeyed gives Encode's patches while keys name their bytes, and
// patches that still decode exactly when a key is misused.
func TestEncodeKeyed(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	refs := make([][]byte, 12)
	for i := range refs {
		refs[i] = pagetest.MemoryLike(r)
	}
	var keyed, plain Encoder
	dst := make([]byte, page)
	for n := range 400 {
		k := r.IntN(len(refs))
		ref := refs[k]
		target := make([]byte, page)
		copy(target[8*r.IntN(4):], ref) // shifted: needs the anchors
		for range r.IntN(30) {
			target[r.IntN(page)] ^= byte(1 + r.UintN(255))
		}
		want, errWant := plain.Encode(nil, ref, target, 0)
		got, err := keyed.EncodeKeyed(nil, ref, target, 0, uint64(k))
		if err != nil || errWant != nil || !bytes.Equal(got, want) {
			t.Fatalf("pair %d: keyed patch of %d bytes (%v), Encode's %d bytes (%v)", n, len(got), err, len(want), errWant)
		}
		// a key misused for other bytes: a stale table, still exact
		var misused Encoder
		misused.EncodeKeyed(nil, ref, target, 0, 1)
		other := pagetest.MemoryLike(r)
		p, err := misused.EncodeKeyed(nil, other, target, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := Decode(dst, other, p); err != nil || !bytes.Equal(dst, target) {
			t.Fatalf("pair %d: stale key: %v", n, err)
		}
	}
}

// nextRun must never skip a position where minRep equal bytes start.
func TestNextRunSkipsNoMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for range 200000 {
		var x uint64
		for k := 0; k < 8; k++ {
			if r.IntN(3) == 0 { // a differing byte
				x |= uint64(1+r.UintN(255)) << (8 * k)
			}
		}
		if uint32(x) == 0 {
			continue
		}
		eq := func(k int) bool { return k >= 8 || byte(x>>(8*k)) == 0 }
		want := 8
		for k := 1; k < 8; k++ {
			if eq(k) && eq(k+1) && eq(k+2) && eq(k+3) {
				want = k
				break
			}
		}
		if got := nextRun(x); got != want {
			t.Fatalf("nextRun(%016x) = %d, want %d", x, got, want)
		}
	}
}

// The encoder's output is pinned: skipping misses a word at a time must give
// the very patches single steps gave (their lengths on fixed pairs).
func TestEncodeDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 10))
	var e Encoder
	total := 0
	for range 200 {
		ref := pagetest.MemoryLike(r)
		target := bytes.Clone(ref)
		for range r.IntN(200) {
			target[r.IntN(page)] ^= byte(1 + r.UintN(255))
		}
		p, err := e.Encode(nil, ref, target, 0)
		if err != nil {
			t.Fatal(err)
		}
		total += len(p)
	}
	if total != encodeDeterministicTotal {
		t.Fatalf("patches total %d bytes, the single-step encoder gave %d", total, encodeDeterministicTotal)
	}
}
