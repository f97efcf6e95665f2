package mem

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fileReader re-reads pages from a real file.
type fileReader struct{ f *os.File }

func (r fileReader) ReadPage(n int64, dst []byte) error {
	_, err := r.f.ReadAt(dst, n*PageSize)
	return err
}

// writeFiles stores each source of c in a file (holes as zero pages) and
// returns readers over them, closed at cleanup.
func (c *corpus) writeFiles(t *testing.T) []PageReader {
	t.Helper()
	dir := t.TempDir()
	var rs []PageReader
	for s, ps := range c.pages {
		var b bytes.Buffer
		for _, p := range ps {
			if p == nil {
				p = make([]byte, PageSize)
			}
			b.Write(p)
		}
		path := filepath.Join(dir, c.names[s])
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		rs = append(rs, fileReader{f})
	}
	return rs
}

// Sources read back from files give exactly the result of copied sources.
func TestEngineReaderSources(t *testing.T) {
	c := newCorpus(4, 3, 250)
	for _, cross := range []bool{false, true} {
		cfg := Config{CrossDomain: cross}
		res := c.runReaders(t, cfg, c.writeFiles(t))
		c.check(t, res, cross)
		want := c.run(t, cfg).Stats
		got := res.Stats
		got.Phases, want.Phases = PhaseTimes{}, PhaseTimes{}
		if got.Total != want.Total || got.Alternate != want.Alternate || got.KSM != want.KSM || got.Patching != want.Patching {
			t.Fatalf("cross=%v: reader sources account differently:\n%+v\n%+v", cross, got.Total, want.Total)
		}
	}
}

// mutReader returns what it is given, or an error, or altered bytes.
type mutReader struct {
	pages [][]byte
	fail  error
	alter bool
}

func (r *mutReader) ReadPage(n int64, dst []byte) error {
	if r.fail != nil {
		return r.fail
	}
	copy(dst, r.pages[n])
	if r.alter {
		dst[0] ^= 1
	}
	return nil
}

func TestEngineReaderErrors(t *testing.T) {
	c := newCorpus(5, 1, 40)
	var pages [][]byte
	for _, p := range c.pages[0] {
		if p != nil {
			pages = append(pages, p)
		}
	}
	boom := errors.New("disk gone")
	for _, tc := range []struct {
		name string
		r    *mutReader
		want error
	}{
		{"read error", &mutReader{fail: boom}, boom},
		{"changed", &mutReader{alter: true}, ErrSourceChanged},
	} {
		tc.r.pages = pages
		e, _ := NewEngine(Config{})
		s := e.AddSourceReader("f", "", tc.r)
		var err error
		for _, p := range pages {
			if err = e.AddPage(s, p); err != nil {
				break
			}
		}
		// a duplicate needs a re-read to be confirmed
		if err == nil {
			err = e.AddPage(s, pages[0])
		}
		if err == nil {
			_, err = e.Finish()
		}
		var pe *PageError
		if !errors.Is(err, tc.want) || !errors.As(err, &pe) {
			t.Errorf("%s: err %v, want %v in a PageError", tc.name, err, tc.want)
		}
	}
}
