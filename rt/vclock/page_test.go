package vclock

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func TestPageRoundTrip(t *testing.T) {
	f := NewFake(123456789, 1.7e18)
	for _, c := range []Config{
		{TDF: TDF{10, 1}},
		{TDF: TDF{1, 3}, Share: Share{1, 4}},
		{TDF: MaxTDF, Share: MinShare, Start: time.Unix(0, 42)},
	} {
		p, err := NewParams(c, f.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, paused := range []bool{false, true} {
			if paused {
				p = p.Pause(f.Now())
			}
			page := make([]byte, PageSize)
			// seq, writer, phase and backup belong to the seqlock: untouched.
			binary.LittleEndian.PutUint64(page[PageOffSeq:], 77)
			binary.LittleEndian.PutUint32(page[PageOffWriter:], 99)
			binary.LittleEndian.PutUint32(page[PageOffPhase:], 2)
			page[PageOffBackup] = 0xaa
			if err := EncodePage(page, &p); err != nil {
				t.Fatal(err)
			}
			if binary.LittleEndian.Uint64(page[PageOffSeq:]) != 77 || binary.LittleEndian.Uint32(page[PageOffWriter:]) != 99 ||
				binary.LittleEndian.Uint32(page[PageOffPhase:]) != 2 || page[PageOffBackup] != 0xaa {
				t.Fatal("EncodePage touched seqlock words")
			}
			q, err := DecodePage(page)
			if err != nil {
				t.Fatal(err)
			}
			if q != p {
				t.Fatalf("round trip: %+v != %+v", q, p)
			}
			// Spot-check the byte offsets that the C reader uses.
			if got := binary.LittleEndian.Uint64(page[16:]); got != p.Mult {
				t.Errorf("mult at 16 = %d, want %d", got, p.Mult)
			}
			if got := int64(binary.LittleEndian.Uint64(page[64+16*int(Monotonic)+8:])); got != p.Bases[Monotonic].Virt {
				t.Errorf("MONOTONIC virt_base at %d = %d, want %d", 64+16+8, got, p.Bases[Monotonic].Virt)
			}
			if page[8] != 'V' || page[9] != 'M' || page[10] != 'X' || page[11] != 'C' {
				t.Errorf("magic bytes %q", page[8:12])
			}
			for i := PageUsed; i < PageSize; i++ {
				if i != PageOffBackup && page[i] != 0 {
					t.Fatalf("byte %d beyond the data is %#x", i, page[i])
				}
			}
		}
	}
	if PageUsed != 256 || PageOffBackup+PageUsed > PageSize {
		t.Errorf("layout: used %d backup %d", PageUsed, PageOffBackup)
	}
}

func TestDecodePageErrors(t *testing.T) {
	p := mustParams(t, "2", Now{})
	good := make([]byte, PageSize)
	if err := EncodePage(good, &p); err != nil {
		t.Fatal(err)
	}
	if err := EncodePage(make([]byte, 10), &p); !errors.Is(err, ErrBadPage) {
		t.Errorf("short encode: %v", err)
	}
	mutate := map[string]func(b []byte){
		"short":       nil,
		"zero":        func(b []byte) { clear(b) },
		"magic":       func(b []byte) { b[PageOffMagic] ^= 1 },
		"version":     func(b []byte) { b[PageOffVersion] = 9 },
		"mult":        func(b []byte) { b[PageOffMult] ^= 1 },
		"cpu_mult":    func(b []byte) { b[PageOffCPUMult] ^= 1 },
		"paused flag": func(b []byte) { b[PageOffFlags] = FlagPaused },
		"tdf zero":    func(b []byte) { clear(b[PageOffTDFNum : PageOffTDFNum+4]) },
		"share > 1":   func(b []byte) { b[PageOffShareNum] = 3 },
	}
	for name, m := range mutate {
		b := append([]byte(nil), good...)
		if m == nil {
			b = b[:100]
		} else {
			m(b)
		}
		if _, err := DecodePage(b); !errors.Is(err, ErrBadPage) && !errors.Is(err, ErrBadTDF) && !errors.Is(err, ErrBadShare) {
			t.Errorf("%s: DecodePage err = %v, want a classified error", name, err)
		}
	}
}

func FuzzDecodePage(f *testing.F) {
	p, _ := NewParams(Config{TDF: TDF{10, 1}}, Now{1, 2, 3})
	good := make([]byte, PageSize)
	_ = EncodePage(good, &p)
	f.Add(good[:PageUsed])
	f.Add(make([]byte, 8))
	f.Fuzz(func(t *testing.T, head []byte) {
		page := make([]byte, PageSize)
		copy(page, head)
		q, err := DecodePage(page)
		if err != nil {
			return
		}
		out := make([]byte, PageSize)
		if err := EncodePage(out, &q); err != nil {
			t.Fatal(err)
		}
		r, err := DecodePage(out)
		if err != nil || r != q {
			t.Fatalf("re-encode differs: %+v %v", r, err)
		}
	})
}
