package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vmux/vmux/mem/store"
)

func newMemPackCmd() *cobra.Command {
	var f memFlags
	var out string
	var quiet, asJSON bool
	c := &cobra.Command{
		Use:   "pack -o STORE [flags] SOURCE...",
		Short: "Store memory sources with sharing, patching and compression",
		Long: `Analyzes the SOURCEs like analyze and writes every page to STORE, a versioned,
checksummed file (docs/store-format.md) from which any single page can be read
without decoding the rest. The store is written atomically: a temp file in
STORE's directory, fsync, rename. STORE must be a new path or a regular
file that is none of the SOURCEs (a device, FIFO, symlink or directory at
STORE is refused, never replaced); the store is readable by its owner only.
The same memory given twice (one file under two names, a process and one of
its threads) is refused. --json prints the analysis document of analyze
--json with the store's figures under "store".`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("pack: no output: give -o STORE")
			}
			a, err := analyze(c.Context(), args, f, out, c.ErrOrStderr())
			if err != nil {
				return err
			}
			info, err := store.Write(c.Context(), out, a.res, a.metas)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), packJSON{analysisDoc(a), info})
			}
			if !quiet {
				writeAnalysisTable(c.OutOrStdout(), a)
				fmt.Fprintln(c.OutOrStdout())
			}
			t := a.res.Stats.Total
			fmt.Fprintf(c.OutOrStdout(), "wrote %s: %s MiB for %s MiB of memory (%s); payload %s MiB, metadata %s MiB (%s of memory)\n",
				out, mb(info.FileBytes), mb(t.TotalBytes), pct(info.FileBytes, t.TotalBytes),
				mb(info.PayloadBytes), mb(info.MetadataBytes), pct(info.MetadataBytes, t.TotalBytes))
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVarP(&out, "output", "o", "", "the store file to write")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the summary line")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (the analysis and the store written)")
	return c
}

// packJSON is what pack --json prints: analyze's document plus the store.
type packJSON struct {
	analysisJSON
	Store store.Info `json:"store"`
}

func newMemUnpackCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "unpack STORE [-o DIR]",
		Short: "Rebuild every source of a store, bit for bit",
		Long: `Writes every source of STORE into DIR (default STORE.d). A file source (raw
image, ELF core, Firecracker memory file) is rebuilt as the exact original file,
sparse where pages are zero. A live process becomes NN-NAME.img (its regions'
pages back to back) plus NN-NAME.regions (one line per region: start end perms
offset-in-img name, hexadecimal).

The files hold memory: they are created readable by their owner only. DIR is
created (mode 0700) if it does not exist; an existing DIR must belong to you
and be writable by nobody else, and every file is created anew in it
(O_EXCL|O_NOFOLLOW, after removing an old entry of that name), so nothing
planted there, a symlink included, is ever written through.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := store.Open(args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			if dir == "" {
				dir = args[0] + ".d"
			}
			bar := newProgress(c.ErrOrStderr())
			var total int64
			for _, src := range s.Sources() {
				total += int64(src.Pages)
			}
			bar.start("unpacking", total*store.PageSize)
			outs, err := s.Unpack(c.Context(), dir, bar.add)
			bar.done()
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(c.OutOrStdout(), unpackJSON{Store: args[0], Dir: dir, Outputs: outs})
			}
			for _, o := range outs {
				fmt.Fprintf(c.OutOrStdout(), "%s\t%d bytes", o.Path, o.Bytes)
				if o.Regions != "" {
					fmt.Fprintf(c.OutOrStdout(), "\tregions: %s", o.Regions)
				}
				fmt.Fprintln(c.OutOrStdout())
			}
			return nil
		},
	}
	c.Flags().StringVarP(&dir, "output", "o", "", "directory to write into (default STORE.d)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the files written as JSON")
	return c
}

// unpackJSON is what unpack --json prints.
type unpackJSON struct {
	Store   string         `json:"store"`
	Dir     string         `json:"dir"`
	Outputs []store.Output `json:"outputs"`
}

func newMemVerifyCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify STORE",
		Short: "Check every checksum of a store and decode every page",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := store.Open(args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			bar := newProgress(c.ErrOrStderr())
			var total int64
			for _, src := range s.Sources() {
				total += int64(src.Pages)
			}
			bar.start("verifying", total*store.PageSize)
			rep, err := s.Verify(func(p int64) { bar.n = p * store.PageSize; bar.draw(false) })
			bar.done()
			if err != nil {
				err = fmt.Errorf("verify %s: %w", args[0], err)
			}
			if asJSON {
				doc := verifyJSON{OK: err == nil, Report: rep}
				if err != nil {
					doc.Error = err.Error()
					var ce *store.CorruptError
					if errors.As(err, &ce) {
						doc.Where = ce.What
					}
				}
				if jerr := writeJSON(c.OutOrStdout(), doc); jerr != nil {
					return jerr
				}
				return err // the document says what failed; the exit status too
			}
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "%s: OK (format v%d, detector %s, codec %s, cross-domain %v)\n", args[0], store.Version, s.Detector(), s.Codec(), s.CrossDomain())
			fmt.Fprintf(w, "%d pages decoded (%d in zero runs), %d entries in %d checked blocks, %d residue extents\n",
				rep.Pages, rep.ZeroRunPages, rep.Entries, rep.Blocks, rep.Residue)
			for i, src := range s.Sources() {
				fmt.Fprintf(w, "  %d  %-40s %-12s %-20s %8d pages, %d regions\n", i, src.Name, src.Kind, src.Domain, src.Pages, len(src.Regions))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

// verifyJSON is what verify --json prints, on success and on failure.
type verifyJSON struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Where string `json:"where,omitempty"` // the corrupt part: "header", "entry block 12"...
	store.Report
}

func newMemCatCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cat STORE SOURCE PAGE",
		Short: "Write one page of a stored source to stdout",
		Long: `Rebuilds page PAGE (counted from 0 over the source's regions in order) of
SOURCE (its index or its name, as verify lists them) and writes its 4096 bytes
to stdout. Only that page's entry and payload (and its reference's) are read.`,
		Args: cobra.ExactArgs(3),
		RunE: func(c *cobra.Command, args []string) error {
			page, err := strconv.ParseUint(strings.TrimPrefix(args[2], "0x"), map[bool]int{true: 16, false: 10}[strings.HasPrefix(args[2], "0x")], 64)
			if err != nil {
				return fmt.Errorf("cat: page %q is not a number", args[2])
			}
			if isTerminal(c.OutOrStdout()) {
				return fmt.Errorf("cat: refusing to write a binary page to a terminal: pipe it (| xxd) or redirect it")
			}
			s, err := store.Open(args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			src, err := s.Lookup(args[1])
			if err != nil {
				return err
			}
			buf := make([]byte, store.PageSize)
			if err := s.ReadPage(src, page, buf); err != nil {
				return fmt.Errorf("cat %s: %w", filepath.Base(args[0]), err)
			}
			_, err = c.OutOrStdout().Write(buf)
			return err
		},
	}
}
