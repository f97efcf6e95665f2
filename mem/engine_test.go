package mem

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/vmux/vmux/mem/internal/pagetest"
	"math/rand/v2"
	"strings"
	"testing"
)

// corpus is a set of sources whose pages the test keeps to check decoding.
type corpus struct {
	names   []string
	domains []Domain
	pages   [][][]byte // nil page = hole added with AddZeroPages
}

// newCorpus builds nsrc sources in two domains: shared library-like pages
// common to all, per-source variants with small edits, shifted copies,
// random pages, zero pages, holes and fill pages.
func newCorpus(seed uint64, nsrc, npages int) *corpus {
	r := rand.New(rand.NewPCG(seed, 1))
	common := make([][]byte, 16)
	for i := range common {
		common[i] = pagetest.MemoryLike(r)
	}
	c := &corpus{}
	for s := 0; s < nsrc; s++ {
		c.names = append(c.names, "src"+string(rune('A'+s)))
		c.domains = append(c.domains, Domain([]string{"tenant1", "tenant2"}[s%2]))
		var ps [][]byte
		for p := 0; p < npages; p++ {
			var pg []byte
			switch r.UintN(10) {
			case 0:
				pg = make([]byte, PageSize)
			case 1:
				pg = nil
			case 2, 3:
				pg = bytes.Clone(common[r.IntN(len(common))])
			case 4, 5:
				pg = bytes.Clone(common[r.IntN(len(common))])
				for range 1 + r.IntN(20) {
					pg[r.IntN(PageSize)] = byte(r.UintN(256))
				}
			case 6:
				pg = make([]byte, PageSize)
				copy(pg[16:], common[r.IntN(len(common))])
			case 7:
				pg = bytes.Repeat([]byte{byte(r.UintN(256))}, PageSize)
			case 8:
				pg = pagetest.Random(r)
			default:
				pg = pagetest.MemoryLike(r)
			}
			ps = append(ps, pg)
		}
		c.pages = append(c.pages, ps)
	}
	return c
}

func (c *corpus) run(t testing.TB, cfg Config) *Result {
	t.Helper()
	return c.runReaders(t, cfg, nil)
}

// runReaders is run with each source added through AddSourceReader with
// readers[s], if readers is not nil.
func (c *corpus) runReaders(t testing.TB, cfg Config, readers []PageReader) *Result {
	t.Helper()
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for s := range c.names {
		var got int
		if readers != nil {
			got = e.AddSourceReader(c.names[s], c.domains[s], readers[s])
		} else {
			got = e.AddSource(c.names[s], c.domains[s])
		}
		if got != s {
			t.Fatalf("AddSource = %d, want %d", got, s)
		}
	}
	// interleave sources page by page, as concurrent readers would
	buf := make([]byte, PageSize)
	for p := 0; ; p++ {
		any := false
		for s := range c.pages {
			if p >= len(c.pages[s]) {
				continue
			}
			any = true
			if c.pages[s][p] == nil {
				if err := e.AddZeroPages(s, 1); err != nil {
					t.Fatal(err)
				}
				continue
			}
			copy(buf, c.pages[s][p])
			if err := e.AddPage(s, buf); err != nil {
				t.Fatal(err)
			}
			clear(buf) // the engine must have copied what it keeps
		}
		if !any {
			break
		}
	}
	// no page copies: slots (<= 4 per content, 16 bytes) and a location each
	if readers != nil && e.idx.MemoryBytes() > int64(e.idx.Len())*(4*16+4)+32<<10 {
		t.Fatalf("reader sources: index holds %d bytes for %d pages", e.idx.MemoryBytes(), e.idx.Len())
	}
	res, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// check decodes every page and verifies the encoding invariants.
func (c *corpus) check(t testing.TB, res *Result, cross bool) {
	t.Helper()
	dst := make([]byte, PageSize)
	var pages int64
	for s := range c.pages {
		for p, want := range c.pages[s] {
			pages++
			if want == nil {
				want = make([]byte, PageSize)
			}
			if err := res.Decode(s, int64(p), dst); err != nil {
				t.Fatalf("decode %d/%d: %v", s, p, err)
			}
			if !bytes.Equal(dst, want) {
				t.Fatalf("page %d of source %d decodes wrong (%s)", p, s, res.Page(s, int64(p)).Kind)
			}
			enc := res.Page(s, int64(p))
			switch enc.Kind {
			case KindZero:
				if !bytes.Equal(want, make([]byte, PageSize)) {
					t.Fatalf("non-zero page %d/%d encoded as zero", s, p)
				}
			case KindShared, KindPatched:
				ref := res.Page(enc.Ref.Source, int64(enc.Ref.Page))
				if enc.Kind == KindShared && ref.Kind == KindPatched {
					// two steps at most: the patch's reference is raw
					if r2 := res.Page(ref.Ref.Source, int64(ref.Ref.Page)); r2.Kind != KindRaw {
						t.Fatalf("shared page %d/%d refers to a page patched against a %s page", s, p, r2.Kind)
					}
				} else if enc.Kind == KindShared && ref.Kind != KindRaw && ref.Kind != KindCompressed {
					t.Fatalf("shared page %d/%d refers to a %s page", s, p, ref.Kind)
				}
				if enc.Kind == KindPatched && ref.Kind != KindRaw {
					t.Fatalf("patched page %d/%d refers to a %s page", s, p, ref.Kind)
				}
				if !cross && c.domains[enc.Ref.Source] != c.domains[s] {
					t.Fatalf("page %d/%d (%s) refers across domains to %v", s, p, enc.Kind, enc.Ref)
				}
				// the store's path: DecodePage with the decoded reference
				refBytes := make([]byte, PageSize)
				if err := res.Decode(enc.Ref.Source, enc.Ref.Page, refBytes); err != nil {
					t.Fatal(err)
				}
				if err := DecodePage(enc, refBytes, dst); err != nil || !bytes.Equal(dst, want) {
					t.Fatalf("DecodePage %d/%d: %v", s, p, err)
				}
			case KindCompressed:
				if len(enc.Data) > DefaultMaxCompressed {
					t.Fatalf("compressed page of %d bytes", len(enc.Data))
				}
			case KindRaw:
			default:
				t.Fatalf("page %d/%d: kind %s", s, p, enc.Kind)
			}
		}
	}
	tot := res.Stats.Total
	k := tot.Pages
	if n := k.Zero + k.Shared + k.Patched + k.Compressed + k.Raw; n != pages {
		t.Fatalf("kind counts sum to %d, want %d pages", n, pages)
	}
	if tot.TotalBytes != pages*PageSize {
		t.Fatalf("total_bytes %d, want %d", tot.TotalBytes, pages*PageSize)
	}
	if tot.StoredBytes != tot.AfterCompressionBytes+tot.MetadataBytes {
		t.Fatal("stored_bytes != after_compression_bytes + metadata_bytes")
	}
	if !(tot.AfterSharingBytes >= tot.AfterPatchingBytes && tot.AfterPatchingBytes >= tot.AfterCompressionBytes) {
		t.Fatalf("mechanisms made things bigger: %+v", tot)
	}
	if b := tot.Bytes; b.Patched+b.Compressed+b.Raw != tot.AfterCompressionBytes {
		t.Fatal("payload by kind does not add up")
	}
	// worst case: every page its own extent and unit, plus source headers
	bound := pages * (MetadataPerExtent + MetadataPerPage + MetadataPerUnit)
	for _, n := range c.names {
		bound += MetadataPerSource + int64(len(n))
	}
	if tot.MetadataBytes > bound {
		t.Fatalf("metadata %d > %d", tot.MetadataBytes, bound)
	}
}

func TestEngineRoundTrip(t *testing.T) {
	c := newCorpus(1, 4, 300)
	for _, det := range Detectors() {
		for _, cd := range Codecs() {
			if cd != DefaultCodec && det != DefaultDetector {
				continue // codecs are independent of detectors
			}
			for _, cross := range []bool{false, true} {
				name := det + "/" + cd + map[bool]string{false: "/domains", true: "/cross"}[cross]
				t.Run(name, func(t *testing.T) {
					res := c.run(t, Config{Detector: det, Codec: cd, CrossDomain: cross})
					c.check(t, res, cross)
					st := res.Stats
					if det != "none" && st.Total.Pages.Patched == 0 {
						t.Errorf("no page patched: %+v", st.Patching)
					}
					if cd != "none" && st.Total.Pages.Compressed == 0 {
						t.Error("no page compressed")
					}
					if cross && st.Total.StoredBytes > st.Alternate.StoredBytes {
						t.Errorf("sharing across domains stored more (%d) than within (%d)", st.Total.StoredBytes, st.Alternate.StoredBytes)
					}
					if !cross && st.Total.StoredBytes < st.Alternate.StoredBytes {
						t.Errorf("sharing within domains stored less (%d) than across (%d)", st.Total.StoredBytes, st.Alternate.StoredBytes)
					}
				})
			}
		}
	}
}

func TestEngineConfigErrors(t *testing.T) {
	_, err := NewEngine(Config{Detector: "bogus"})
	if !errors.Is(err, ErrUnknownDetector) || !strings.Contains(err.Error(), "hsd21") {
		t.Fatalf("bad detector: %v", err)
	}
	_, err = NewEngine(Config{Codec: "gzip"})
	if !errors.Is(err, ErrUnknownCodec) || !strings.Contains(err.Error(), "lz4") {
		t.Fatalf("bad codec: %v", err)
	}
	if _, err = NewEngine(Config{MaxPatch: 5000}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("MaxPatch 5000: %v", err)
	}
	e, err := NewEngine(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Config(); got.Detector != "sketch" || got.Codec != "lz4" || got.MaxPatch != 2048 {
		t.Fatalf("defaults: %+v", got)
	}
	s := e.AddSource("a", "")
	if err := e.AddPage(s, make([]byte, 100)); !errors.Is(err, ErrPageSize) {
		t.Fatalf("short page: %v", err)
	}
	if err := e.AddPage(7, make([]byte, PageSize)); !errors.Is(err, ErrNoSource) {
		t.Fatalf("bad source: %v", err)
	}
	if err := e.AddZeroPages(s, -1); err == nil {
		t.Fatal("negative hole accepted")
	}
	res, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.AddPage(s, make([]byte, PageSize)); !errors.Is(err, ErrFinished) {
		t.Fatalf("after Finish: %v", err)
	}
	if _, err := res.Encoding(0, 0); !errors.Is(err, ErrNoPage) {
		t.Fatalf("page of empty source: %v", err)
	}
	if _, err := res.Encoding(3, 0); !errors.Is(err, ErrNoSource) {
		t.Fatalf("bad source: %v", err)
	}
	if res.Page(0, 5).Kind != KindInvalid {
		t.Fatal("missing page not KindInvalid")
	}
}

// A huge hole costs one extent and no time.
func TestEngineHugeHole(t *testing.T) {
	e, _ := NewEngine(Config{})
	s := e.AddSource("sparse", "")
	if err := e.AddZeroPages(s, 1<<40); err != nil { // 4 EiB
		t.Fatal(err)
	}
	pg := bytes.Repeat([]byte{7}, PageSize)
	if err := e.AddPage(s, pg); err != nil {
		t.Fatal(err)
	}
	res, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, PageSize)
	if err := res.Decode(s, 1<<40, dst); err != nil || !bytes.Equal(dst, pg) {
		t.Fatalf("page after hole: %v", err)
	}
	if res.Page(s, 12345).Kind != KindZero {
		t.Fatal("hole page not zero")
	}
	if m := res.Stats.Total.MetadataBytes; m > 200 {
		t.Fatalf("metadata of a hole: %d bytes", m)
	}
	if r := res.Stats.KSM.MetadataBytes; r != KSMMetadataPerPage {
		t.Fatalf("KSM metadata %d: holes are not present pages", r)
	}
}

func TestDecodePageRejects(t *testing.T) {
	dst := make([]byte, PageSize)
	ref := make([]byte, PageSize)
	bad := []Encoded{
		{Kind: KindInvalid},
		{Kind: Kind(99)},
		{Kind: KindRaw, Data: []byte{1, 2}},
		{Kind: KindCompressed, Codec: "lz4", Data: []byte{0xff, 0xff}},
		{Kind: KindCompressed, Codec: "zstd", Data: []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0}},
		{Kind: KindCompressed, Codec: "nope", Data: []byte{1}},
		{Kind: KindPatched, Data: []byte{0x80, 0x20, 0x81, 0x40, 0x02}},
		{Kind: KindPatched, Data: []byte{0x80}},
	}
	for _, enc := range bad {
		if err := DecodePage(enc, ref, dst); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s %q: err %v, want ErrCorrupt", enc.Kind, enc.Data, err)
		}
	}
	if err := DecodePage(Encoded{Kind: KindPatched}, nil, dst); !errors.Is(err, ErrCorrupt) {
		t.Errorf("patched without reference: %v", err)
	}
	if err := DecodePage(Encoded{Kind: KindZero}, nil, dst[:10]); !errors.Is(err, ErrPageSize) {
		t.Errorf("short dst: %v", err)
	}
}

// A Result is read by many goroutines at once (the store writer, page
// servers): every page decodes right from all of them.
func TestResultConcurrentDecode(t *testing.T) {
	c := newCorpus(3, 3, 150)
	res := c.run(t, Config{CrossDomain: true})
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			dst := make([]byte, PageSize)
			for s := range c.pages {
				for p := range c.pages[s] {
					p = (p + g*37) % len(c.pages[s])
					want := c.pages[s][p]
					if want == nil {
						want = make([]byte, PageSize)
					}
					if err := res.Decode(s, int64(p), dst); err != nil || !bytes.Equal(dst, want) {
						done <- fmt.Errorf("goroutine %d: page %d/%d: %v", g, s, p, err)
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzEngine builds sources from fuzz bytes (each byte picks a page: zero,
// a hole, one of a few bases, a base with an edit, a fill) and checks that
// every page decodes exactly, in both sharing modes.
func FuzzEngine(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, uint8(2))
	f.Add([]byte{3, 3, 3, 35, 67, 99, 1, 1, 0, 0}, uint8(3))
	r := rand.New(rand.NewPCG(11, 11))
	bases := [][]byte{pagetest.MemoryLike(r), pagetest.MemoryLike(r), pagetest.Random(r)}
	f.Fuzz(func(t *testing.T, spec []byte, nsrc uint8) {
		if len(spec) > 256 {
			spec = spec[:256]
		}
		n := int(nsrc%4) + 1
		c := &corpus{}
		for s := range n {
			c.names = append(c.names, fmt.Sprint("s", s))
			c.domains = append(c.domains, Domain(fmt.Sprint("d", s%2)))
			c.pages = append(c.pages, nil)
		}
		for i, b := range spec {
			var pg []byte
			switch b % 8 {
			case 0:
				pg = make([]byte, PageSize)
			case 1:
				pg = nil
			case 2, 3, 4:
				pg = bytes.Clone(bases[int(b%8)-2])
			case 5, 6:
				pg = bytes.Clone(bases[int(b>>3)%len(bases)])
				pg[int(b)*16%PageSize] ^= b | 1
				pg[(int(b)*97+i)%PageSize] ^= 0x5a
			default:
				pg = bytes.Repeat([]byte{b}, PageSize)
			}
			c.pages[i%n] = append(c.pages[i%n], pg)
		}
		for _, cross := range []bool{false, true} {
			c.check(t, c.run(t, Config{CrossDomain: cross}), cross)
		}
	})
}
