package codec

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func pages() map[string][]byte {
	r := rand.New(rand.NewPCG(1, 1))
	mem := make([]byte, 4096)
	for i := 0; i < 4096; i += 8 {
		if r.IntN(2) == 0 {
			mem[i] = byte(r.UintN(16))
			mem[i+5] = 0x7f
		}
	}
	rnd := make([]byte, 4096)
	for i := range rnd {
		rnd[i] = byte(r.UintN(256))
	}
	return map[string][]byte{
		"memory": mem, "zero": make([]byte, 4096), "same": bytes.Repeat([]byte{9}, 4096),
		"random": rnd, "text": bytes.Repeat([]byte("hello, world "), 316)[:4096],
	}
}

func TestRoundTrip(t *testing.T) {
	for _, name := range Names() {
		c, err := Get(name)
		if err != nil {
			t.Fatal(err)
		}
		for kind, p := range pages() {
			out, err := c.Compress(nil, p)
			if errors.Is(err, ErrIncompressible) {
				if kind != "random" && name != "none" {
					t.Errorf("%s: %s page incompressible", name, kind)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s %s: %v", name, kind, err)
			}
			if len(out) >= len(p) {
				t.Fatalf("%s %s: %d bytes not smaller", name, kind, len(out))
			}
			got := make([]byte, len(p))
			if err := c.Decompress(got, out); err != nil || !bytes.Equal(got, p) {
				t.Fatalf("%s %s: round trip: %v", name, kind, err)
			}
			// a buffer of the wrong size is corruption, not a short read
			if err := c.Decompress(make([]byte, 100), out); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s %s: small dst: %v", name, kind, err)
			}
		}
	}
}

func TestGetUnknown(t *testing.T) {
	if _, err := Get("brotli"); !errors.Is(err, ErrUnknown) {
		t.Fatal(err)
	}
	if n := Names(); n[0] != "lz4" || n[1] != "zstd" || n[2] != "none" {
		t.Fatalf("Names() = %v", n)
	}
}

func fuzzDecompress(f *testing.F, name string) {
	c, _ := Get(name)
	for _, p := range pages() {
		if out, err := c.Compress(nil, p); err == nil {
			f.Add(out)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		buf := bytes.Repeat([]byte{0xA5}, 4096+64)
		dst := buf[32 : 32+4096]
		if err := c.Decompress(dst, in); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error not ErrCorrupt: %v", err)
		}
		if !bytes.Equal(buf[:32], bytes.Repeat([]byte{0xA5}, 32)) || !bytes.Equal(buf[32+4096:], bytes.Repeat([]byte{0xA5}, 32)) {
			t.Fatal("write outside dst")
		}
	})
}

func FuzzDecompressLZ4(f *testing.F)  { fuzzDecompress(f, "lz4") }
func FuzzDecompressZstd(f *testing.F) { fuzzDecompress(f, "zstd") }

func BenchmarkCodecs(b *testing.B) {
	p := pages()["memory"]
	for _, name := range Names() {
		c, _ := Get(name)
		out, _ := c.Compress(nil, p)
		b.Run(name+"/compress", func(b *testing.B) {
			b.SetBytes(4096)
			buf := make([]byte, 0, 8192)
			for b.Loop() {
				_, _ = c.Compress(buf, p)
			}
			b.ReportMetric(float64(len(p))/float64(max(len(out), 1)), "ratio")
		})
		if name == "none" {
			continue
		}
		b.Run(name+"/decompress", func(b *testing.B) {
			b.SetBytes(4096)
			dst := make([]byte, 4096)
			for b.Loop() {
				if err := c.Decompress(dst, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("memcpy-baseline", func(b *testing.B) {
		b.SetBytes(4096)
		dst := make([]byte, 4096)
		for b.Loop() {
			copy(dst, p)
		}
	})
}
