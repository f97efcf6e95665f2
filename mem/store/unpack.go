package store

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vmux/vmux/internal/safefile"
	"github.com/vmux/vmux/mem/source"
)

// Output is one file Unpack wrote.
type Output struct {
	Source  int    `json:"source"`
	Path    string `json:"path"`
	Regions string `json:"regions,omitempty"` // processes: the regions file
	Bytes   int64  `json:"bytes"`
}

// Unpack writes every source into dir. A file source (raw image, ELF core,
// Firecracker memory file) is rebuilt byte for byte as the original file,
// sparse where its pages are zero. A live process becomes NN-NAME.img, its
// regions' pages back to back, plus NN-NAME.regions, a text file with one
// line per region: start end perms offset-in-img name.
//
// The files hold process memory: they are created owner-only (0600), in a
// directory Unpack creates (0700) or one that already exists and that only
// this user can write (safefile.OutputDir), each with O_EXCL|O_NOFOLLOW
// after removing any entry of its name, so that a symlink planted there is
// never followed. progress, if not nil, is called with the bytes of memory
// written so far by each batch; ctx cancels between batches (the file being
// written is then removed).
func (s *Store) Unpack(ctx context.Context, dir string, progress func(bytes int64)) ([]Output, error) {
	d, err := safefile.OutputDir(dir)
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	defer d.Close()
	var outs []Output
	for i := range s.x.sources {
		o, err := s.unpackSource(ctx, i, d, progress)
		if err != nil {
			return outs, fmt.Errorf("unpack source %d (%s): %w", i, s.x.sources[i].Name, err)
		}
		outs = append(outs, o)
	}
	return outs, nil
}

// FileName is the name Unpack gives source i.
func (s *Store) FileName(i int) string {
	src := s.x.sources[i]
	name := src.Name
	if src.Kind != source.KindProcess {
		name = filepath.Base(name)
	}
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == ':' || r == '(' || r == ')' || r == ' ' {
			return '_'
		}
		return r
	}, name)
	if src.Kind == source.KindProcess {
		name += ".img"
	}
	return fmt.Sprintf("%02d-%s", i, name)
}

// progressEvery is how many pages unpack writes between progress calls and
// cancellation checks.
const progressEvery = 1024

func (s *Store) unpackSource(ctx context.Context, i int, d *safefile.Dir, progress func(int64)) (Output, error) {
	src := &s.x.sources[i]
	name := s.FileName(i)
	out := Output{Source: i, Path: filepath.Join(d.Path(), name)}
	f, err := d.Create(name)
	if err != nil {
		return out, err
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			d.Remove(name)
		}
	}()
	process := src.Kind == source.KindProcess
	size := src.FileSize
	if process {
		size = int64(src.Pages) * PageSize
	}
	if err := f.Truncate(size); err != nil {
		return out, err
	}
	for _, r := range src.Residue {
		b, err := s.ReadResidue(r)
		if err != nil {
			return out, err
		}
		if _, err := f.WriteAt(b, r.FileOff); err != nil {
			return out, err
		}
	}
	page := make([]byte, PageSize)
	var first uint64 // the region's first page in the source
	var done int64   // pages covered, for progress
	for _, r := range src.Regions {
		for k := range r.Pages() {
			if done++; done%progressEvery == 0 {
				if err := ctx.Err(); err != nil {
					return out, err
				}
				if progress != nil {
					progress(progressEvery * PageSize)
				}
			}
			p := first + k
			if ei, _ := lookupRun(src.runs, p); ei == zeroRun {
				continue // a hole: nothing to write
			}
			if err := s.ReadPage(i, p, page); err != nil {
				return out, err
			}
			off, n := int64(p*PageSize), uint64(PageSize)
			if !process {
				if k*PageSize >= r.FileLen {
					continue // past the file-backed part: zero, not in the file
				}
				off, n = r.FileOff+int64(k*PageSize), min(PageSize, r.FileLen-k*PageSize)
			}
			if _, err := f.WriteAt(page[:n], off); err != nil {
				return out, err
			}
		}
		first += r.Pages()
	}
	if progress != nil {
		progress(done % progressEvery * PageSize)
	}
	if err := f.Sync(); err != nil {
		return out, err
	}
	out.Bytes = size
	if process {
		rname := strings.TrimSuffix(name, ".img") + ".regions"
		out.Regions = filepath.Join(d.Path(), rname)
		if err := writeRegions(d, rname, src.Regions); err != nil {
			return out, err
		}
	}
	ok = true
	return out, nil
}

func writeRegions(d *safefile.Dir, name string, rs []source.Region) error {
	f, err := d.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "# start end perms offset-in-img name")
	var off uint64
	for _, r := range rs {
		fmt.Fprintf(w, "%x %x %s %x %s\n", r.Start, r.Start+r.Len, r.Perms, off, r.Name)
		off += r.Pages() * PageSize
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
