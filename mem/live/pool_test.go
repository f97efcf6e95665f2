package live

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/internal/pagetest"
)

// payloadStores runs a test over the in-memory fake and the real file.
func payloadStores(t *testing.T, f func(t *testing.T, p Payloads)) {
	t.Run("mem", func(t *testing.T) { f(t, &MemPayloads{}) })
	t.Run("file", func(t *testing.T) {
		fp, err := OpenFilePayloads(filepath.Join(t.TempDir(), "payload"))
		if err != nil {
			t.Fatal(err)
		}
		defer fp.Close()
		f(t, fp)
	})
}

func newPool(t *testing.T, cfg mem.Config, p Payloads) *Pool {
	t.Helper()
	pl, err := NewPool(cfg, p, PoolHooks{})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func mustPut(t *testing.T, p *Pool, g int32, page []byte) (CID, mem.Kind) {
	t.Helper()
	id, k, err := p.Put(g, page)
	if err != nil {
		t.Fatal(err)
	}
	return id, k
}

func mustDecode(t *testing.T, p *Pool, id CID, want []byte) {
	t.Helper()
	got := make([]byte, pageSize)
	if err := p.Decode(id, got); err != nil {
		t.Fatalf("decode %d: %v", id, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("decode %d: bytes differ", id)
	}
}

func TestPoolMechanisms(t *testing.T) {
	payloadStores(t, func(t *testing.T, ps Payloads) {
		p := newPool(t, mem.Config{}, ps)
		g := p.Group("uid:1000")
		r := rand.New(rand.NewPCG(1, 2))
		zero := make([]byte, pageSize)
		if id, k := mustPut(t, p, g, zero); id != ZeroCID || k != mem.KindZero {
			t.Fatalf("zero page: %d %s", id, k)
		}
		base := pagetest.MemoryLike(r)
		a, ka := mustPut(t, p, g, base)
		if ka != mem.KindCompressed {
			t.Fatalf("memory-like page stored %s, want compressed", ka)
		}
		b, kb := mustPut(t, p, g, append([]byte(nil), base...))
		if b != a || kb != mem.KindShared {
			t.Fatalf("identical page: %d %s, want shared %d", b, kb, a)
		}
		sim := append([]byte(nil), base...)
		sim[100] ^= 0xff
		sim[2000] ^= 0x55
		c, kc := mustPut(t, p, g, sim)
		if kc != mem.KindPatched {
			t.Fatalf("similar page stored %s, want patched", kc)
		}
		rnd := pagetest.Random(r)
		d, kd := mustPut(t, p, g, rnd)
		if kd != mem.KindRaw {
			t.Fatalf("random page stored %s, want raw", kd)
		}
		mustDecode(t, p, a, base)
		mustDecode(t, p, c, sim)
		mustDecode(t, p, d, rnd)
		if h := p.Holders(a); h != 2 {
			t.Fatalf("shared content has %d holders, want 2", h)
		}
		// the reference outlives its holders while a patch uses it
		p.Release(a)
		p.Release(b)
		mustDecode(t, p, c, sim)
		if st := p.Stats(); st.Contents != 3 {
			t.Fatalf("contents %d, want 3 (the reference stays for its patch)", st.Contents)
		}
		p.Release(c)
		p.Release(d)
		if st := p.Stats(); st.Contents != 0 || st.Payload != 0 || st.Holders != 0 {
			t.Fatalf("after every release: %+v", st)
		}
		if n := ps.Bytes(); n != 0 {
			t.Fatalf("payload store holds %d bytes after every release", n)
		}
	})
}

func TestPoolDomains(t *testing.T) {
	for _, cross := range []bool{false, true} {
		p := newPool(t, mem.Config{CrossDomain: cross}, &MemPayloads{})
		r := rand.New(rand.NewPCG(3, 4))
		page := pagetest.MemoryLike(r)
		sim := append([]byte(nil), page...)
		sim[64] ^= 1
		a, _ := mustPut(t, p, p.Group("tenant-a"), page)
		b, kb := mustPut(t, p, p.Group("tenant-b"), page)
		_, kc := mustPut(t, p, p.Group("tenant-b"), append(sim[:0:0], sim...))
		if cross {
			if a != b || kb != mem.KindShared {
				t.Errorf("cross-domain: identical pages of two domains not shared (%s)", kb)
			}
		} else {
			if a == b || kb == mem.KindShared {
				t.Errorf("within domains: a page of tenant-b shared with tenant-a")
			}
			if kc != mem.KindPatched {
				t.Errorf("within domains: a similar page of tenant-b not patched against tenant-b's page (%s)", kc)
			}
		}
	}
}

// TestPoolChurn puts and releases pages at random against a model and
// checks every live page decodes exactly, and that nothing is left.
func TestPoolChurn(t *testing.T) {
	payloadStores(t, func(t *testing.T, ps Payloads) {
		p := newPool(t, mem.Config{}, ps)
		r := rand.New(rand.NewPCG(5, 6))
		groups := []int32{p.Group("a"), p.Group("b")}
		var bases [][]byte
		for i := 0; i < 20; i++ {
			bases = append(bases, pagetest.MemoryLike(r))
		}
		type held struct {
			id   CID
			page []byte
		}
		var live []held
		for step := 0; step < 3000; step++ {
			if len(live) > 0 && r.IntN(3) == 0 {
				i := r.IntN(len(live))
				mustDecode(t, p, live[i].id, live[i].page)
				p.Release(live[i].id)
				live[i] = live[len(live)-1]
				live = live[:len(live)-1]
				continue
			}
			var page []byte
			switch r.IntN(4) {
			case 0:
				page = append([]byte(nil), bases[r.IntN(len(bases))]...)
			case 1:
				page = append([]byte(nil), bases[r.IntN(len(bases))]...)
				for k := 0; k < 1+r.IntN(8); k++ {
					page[r.IntN(pageSize)] = byte(r.Uint32())
				}
			case 2:
				page = pagetest.MemoryLike(r)
			default:
				page = pagetest.Random(r)
			}
			id, _ := mustPut(t, p, groups[r.IntN(2)], page)
			live = append(live, held{id, page})
		}
		for _, h := range live {
			mustDecode(t, p, h.id, h.page)
			p.Release(h.id)
		}
		if st := p.Stats(); st.Contents != 0 || st.Holders != 0 {
			t.Fatalf("after every release: %+v", st)
		}
		if n := ps.Bytes(); n != 0 {
			t.Fatalf("payload store holds %d bytes after every release", n)
		}
	})
}
