package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/source"
	"github.com/vmux/vmux/mem/store"
)

func init() { register(newMemCmd) }

func newMemCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "mem",
		Short: "Difference Engine: share, patch and compress memory pages",
		Long: `The Difference Engine stores identical pages once (sharing), similar pages as
small deltas against a reference page (patching) and the rest compressed.

SOURCE is a file path (a raw memory image, or an ELF core file recognized by
its header), pid:N (a live process; needs root or ptrace rights), core:PATH,
raw:PATH, or fc:MEMFILE[,REGIONS.json] (a Firecracker snapshot memory file).
Every source is its own trust domain, except that live processes of one user
share the domain uid:<uid>. Nothing is shared across domains unless
--cross-domain is given; both figures are reported.`,
	}
	c.AddCommand(newMemAnalyzeCmd(), newMemPackCmd(), newMemUnpackCmd(), newMemVerifyCmd(),
		newMemCatCmd(), newMemDemoCmd(), newMemLiveCmd())
	return c
}

// memFlags are the analysis flags analyze, pack and demo share.
type memFlags struct {
	detector, codec, domain string
	cross, fileBacked       bool
}

func (f *memFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.detector, "detector", "", "similarity detector: "+strings.Join(mem.Detectors(), ", ")+" (default "+mem.DefaultDetector+"; none disables patching)")
	c.Flags().StringVar(&f.codec, "codec", "", "compression codec: "+strings.Join(mem.Codecs(), ", ")+" (default "+mem.DefaultCodec+")")
	c.Flags().BoolVar(&f.cross, "cross-domain", false, "share and patch across trust domains (a timing side channel between tenants)")
	c.Flags().StringVar(&f.domain, "domain", "", "put all the given sources in this one trust domain")
	c.Flags().BoolVar(&f.fileBacked, "file-backed", false, "also read file-backed mappings of live processes")
}

func (f *memFlags) config() mem.Config {
	return mem.Config{Detector: f.detector, Codec: f.codec, CrossDomain: f.cross}
}

// analysis is one run of the engine over a set of sources.
type analysis struct {
	res     *mem.Result
	metas   []store.Meta
	elapsed time.Duration
	// asRead marks, per source, a file analyzed as read (it changed while
	// read); changed counts its pages that changed meanwhile
	asRead  []bool
	changed []int64
}

// analyze opens every source first (so bad arguments fail before any work:
// a source given twice, or out, the store to be written if not "", being
// unwritable or one of the sources), then feeds them to one engine, with a
// progress bar on a terminal.
func analyze(ctx context.Context, specs []string, f memFlags, out string, stderr io.Writer) (*analysis, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("no SOURCE given: name a file, pid:N, core:PATH or fc:MEMFILE")
	}
	e, err := mem.NewEngine(f.config())
	if err != nil {
		return nil, err
	}
	srcs, err := source.OpenAll(specs, source.Options{FileBacked: f.fileBacked, Domain: f.domain})
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	if out != "" {
		var ids []source.Identity
		for _, s := range srcs {
			id, _ := source.IdentityOf(s)
			ids = append(ids, id)
		}
		if err := store.CheckOutput(out, ids...); err != nil {
			return nil, err
		}
	}
	a, err := ingestAll(ctx, e, srcs, stderr, false)
	if errors.Is(err, mem.ErrSourceChanged) {
		// a file changed between its scan and a re-read (written by a
		// process that does not map it): analyze every file as read
		for _, s := range srcs {
			s.Close()
		}
		srcs = srcs[:0]
		for _, sp := range specs {
			s, err := source.Open(sp, source.Options{FileBacked: f.fileBacked, Domain: f.domain})
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, s)
		}
		if e, err = mem.NewEngine(f.config()); err != nil {
			return nil, err
		}
		a, err = ingestAll(ctx, e, srcs, stderr, true)
	}
	return a, err
}

// ingestAll feeds srcs to e and finishes. A file that changes while it is
// read (mapped shared by a running process, like a QEMU guest's memory
// backend, or every file when asRead) is analyzed as it was read: its
// pages are copied into the engine rather than re-read, and the pages that
// changed meanwhile are counted.
func ingestAll(ctx context.Context, e *mem.Engine, srcs []source.Source, stderr io.Writer, asRead bool) (*analysis, error) {
	t0 := time.Now()
	bar := newProgress(stderr)
	a := &analysis{changed: make([]int64, len(srcs)), asRead: make([]bool, len(srcs))}
	watched := make([]*source.Watched, len(srcs))
	for i, s := range srcs {
		bar.start(fmt.Sprintf("[%d/%d] %s", i+1, len(srcs), s.Name()), s.FileSize())
		if r, ok := source.Rereader(s); ok {
			if asRead || source.MappedShared(s.Name()) {
				w, err := source.Watch(s)
				if err != nil {
					return nil, err
				}
				watched[i], s = w, w
			} else {
				// a file: the engine re-reads its pages instead of copying them
				e.SetNextReader(r)
			}
		}
		m, err := store.Ingest(ctx, e, s, bar.add)
		bar.done()
		if err != nil {
			return nil, err
		}
		a.metas = append(a.metas, m)
	}
	bar.start("patching and compressing", 0)
	res, err := e.FinishContext(ctx, bar.fraction)
	bar.done()
	if err != nil {
		return nil, fmt.Errorf("finish analysis: %w", err)
	}
	a.res = res
	for i, w := range watched {
		if w == nil {
			continue
		}
		a.asRead[i] = true
		if a.changed[i], err = w.Changed(); err != nil {
			return nil, fmt.Errorf("count changed pages of %s: %w", w.Name(), err)
		}
	}
	a.elapsed = time.Since(t0)
	return a, nil
}

func newMemAnalyzeCmd() *cobra.Command {
	var f memFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "analyze [flags] SOURCE...",
		Short: "Measure what sharing, patching and compression would save",
		Long: `Reads every SOURCE, runs the Difference Engine over all of them together and
prints, per source and in total, the pages by mechanism and the bytes after
each step, next to the KSM-equivalent (identical-page sharing alone, zero
pages included, across all sources). --json prints the stable JSON described
in docs/store-format.md.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := analyze(c.Context(), args, f, "", c.ErrOrStderr())
			if err != nil {
				return err
			}
			if asJSON {
				return writeAnalysisJSON(c.OutOrStdout(), a)
			}
			writeAnalysisTable(c.OutOrStdout(), a)
			return nil
		},
	}
	f.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return c
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && termIsTerminal(int(f.Fd()))
}
