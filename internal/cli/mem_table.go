package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/mem/source"
)

// analysisJSONVersion is bumped on any incompatible change of the JSON
// (docs/store-format.md documents it).
const analysisJSONVersion = 1

type skipJSON struct {
	Start  uint64 `json:"start"`
	Bytes  uint64 `json:"bytes"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

type sourceJSON struct {
	Name    string      `json:"name"`
	Kind    source.Kind `json:"kind"`
	Domain  string      `json:"domain"`
	Regions int         `json:"regions"`
	Skipped []skipJSON  `json:"skipped"`
	// PaddedBytes: zero bytes added to regions whose length is not a whole
	// number of pages (a raw file's tail); unpack leaves them out again.
	PaddedBytes int64 `json:"padded_bytes"`
	// ChangedPages: pages that changed while the source was read (a file
	// mapped shared by a running process is analyzed as read).
	ChangedPages int64 `json:"changed_pages"`
	mem.Totals
}

// residentJSON repeats the savings without the holes (file holes, pages a
// process never touched), which cost nothing before and after.
type residentJSON struct {
	Bytes                   int64   `json:"bytes"`
	SavedBytes              int64   `json:"saved_bytes"`
	IdenticalOnlySavedBytes int64   `json:"identical_only_saved_bytes"`
	SavingsRatio            float64 `json:"savings_ratio"`
}

func (a *analysis) holeBytes() int64 {
	var h int64
	for _, m := range a.metas {
		h += m.HolePages * 4096
	}
	return h
}

func (a *analysis) resident() residentJSON {
	st, h := a.res.Stats, a.holeBytes()
	r := residentJSON{Bytes: st.Total.TotalBytes - h, SavedBytes: st.Total.SavedBytes - h, IdenticalOnlySavedBytes: st.KSM.SavedBytes - h}
	if r.IdenticalOnlySavedBytes > 0 {
		r.SavingsRatio = float64(r.SavedBytes) / float64(r.IdenticalOnlySavedBytes)
	}
	return r
}

type analysisJSON struct {
	Version                  int               `json:"version"`
	Detector                 string            `json:"detector"`
	Codec                    string            `json:"codec"`
	CrossDomain              bool              `json:"cross_domain"`
	TotalBytes               int64             `json:"total_bytes"`
	StoredBytes              int64             `json:"stored_bytes"`
	IdenticalOnlyStoredBytes int64             `json:"identical_only_stored_bytes"`
	SavedBytes               int64             `json:"saved_bytes"`
	IdenticalOnlySavedBytes  int64             `json:"identical_only_saved_bytes"`
	SavingsRatio             float64           `json:"savings_ratio"`
	HoleBytes                int64             `json:"hole_bytes"`
	Resident                 residentJSON      `json:"resident"`
	Pages                    mem.KindCounts    `json:"pages"`
	Sources                  []sourceJSON      `json:"sources"`
	Total                    mem.Totals        `json:"total"`
	KSM                      mem.KSMStats      `json:"ksm_equivalent"`
	Alternate                mem.Totals        `json:"alternate"`
	AlternateSavingsRatio    float64           `json:"alternate_savings_ratio"`
	Phases                   mem.PhaseTimes    `json:"phases"`
	Patching                 mem.DetectorStats `json:"patching"`
	ElapsedNS                int64             `json:"elapsed_ns"`
}

func analysisDoc(a *analysis) analysisJSON {
	st := a.res.Stats
	d := analysisJSON{
		Version: analysisJSONVersion, Detector: st.Detector, Codec: st.Codec, CrossDomain: st.CrossDomain,
		TotalBytes: st.Total.TotalBytes, StoredBytes: st.Total.StoredBytes,
		IdenticalOnlyStoredBytes: st.IdenticalOnlyStoredBytes,
		SavedBytes:               st.Total.SavedBytes, IdenticalOnlySavedBytes: st.KSM.SavedBytes,
		SavingsRatio: st.SavingsRatio, Pages: st.Total.Pages, Total: st.Total, KSM: st.KSM,
		Alternate: st.Alternate, AlternateSavingsRatio: st.AlternateSavingsRatio,
		Phases: st.Phases, Patching: st.Patching, ElapsedNS: a.elapsed.Nanoseconds(),
		HoleBytes: a.holeBytes(), Resident: a.resident(),
	}
	for i, s := range st.Sources {
		m := a.metas[i]
		sj := sourceJSON{Name: m.Name, Kind: m.Kind, Domain: m.Domain, Regions: len(m.Regions), Totals: s.Totals,
			Skipped: []skipJSON{}, PaddedBytes: paddedBytes(m.Regions), ChangedPages: a.changed[i]}
		for _, k := range m.Skipped {
			sj.Skipped = append(sj.Skipped, skipJSON{k.Start, k.Len, k.Name, k.Reason})
		}
		d.Sources = append(d.Sources, sj)
	}
	return d
}

func paddedBytes(rs []source.Region) int64 {
	var n int64
	for _, r := range rs {
		n += int64(r.Pages()*source.PageSize - r.Len)
	}
	return n
}

func writeAnalysisJSON(w io.Writer, a *analysis) error { return writeJSON(w, analysisDoc(a)) }

// writeJSON prints v as one indented JSON document: what every --json
// prints.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func pct(part, whole int64) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
}

func mb(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// writeAnalysisTable prints the analysis in the spirit of Table 1 of the
// Difference Engine paper: pages by mechanism, then bytes after each step.
func writeAnalysisTable(w io.Writer, a *analysis) {
	st := a.res.Stats
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SOURCE\tDOMAIN\tPAGES\tZERO\tSHARED\tPATCHED\tCOMPR\tRAW\tMiB\tSHARE\t+PATCH\t+COMPR\tMETA\tSTORED\tSAVED\t")
	row := func(name, dom string, t mem.Totals) {
		p := t.Pages
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, dom,
			p.Zero+p.Shared+p.Patched+p.Compressed+p.Raw, p.Zero, p.Shared, p.Patched, p.Compressed, p.Raw,
			mb(t.TotalBytes), mb(t.AfterSharingBytes), mb(t.AfterPatchingBytes), mb(t.AfterCompressionBytes),
			mb(t.MetadataBytes), mb(t.StoredBytes), pct(t.SavedBytes, t.TotalBytes))
	}
	for _, s := range st.Sources {
		name := s.Name
		if len(name) > 40 {
			name = "..." + name[len(name)-37:]
		}
		row(name, string(s.Domain), s.Totals)
	}
	row("TOTAL", "", st.Total)
	tw.Flush()

	t := st.Total
	fmt.Fprintf(w, "\nMiB columns: memory scanned, then what remains after sharing identical pages, after\n"+
		"patching similar ones, after compressing the rest; META is the page tables; STORED = +COMPR + META.\n\n")
	fmt.Fprintf(w, "vmux (%s, %s%s): %s MiB stored of %s MiB, saves %s MiB (%s)\n",
		st.Detector, st.Codec, map[bool]string{true: ", cross-domain", false: ""}[st.CrossDomain],
		mb(t.StoredBytes), mb(t.TotalBytes), mb(t.SavedBytes), pct(t.SavedBytes, t.TotalBytes))
	fmt.Fprintf(w, "KSM-equivalent (identical pages only, zero pages merged, all domains, KSM's rmap metadata):\n"+
		"  %s MiB stored, saves %s MiB (%s)\n", mb(st.KSM.StoredBytes), mb(st.KSM.SavedBytes), pct(st.KSM.SavedBytes, t.TotalBytes))
	if st.KSM.SavedBytes > 0 {
		fmt.Fprintf(w, "vmux saves %.2fx what the KSM-equivalent saves\n", st.SavingsRatio)
	}
	other := "across domains"
	if st.CrossDomain {
		other = "within domains only"
	}
	fmt.Fprintf(w, "If sharing were %s: %s MiB stored, saves %s MiB (%.2fx the KSM-equivalent)\n",
		other, mb(st.Alternate.StoredBytes), mb(st.Alternate.SavedBytes), st.AlternateSavingsRatio)
	pt := st.Patching
	fmt.Fprintf(w, "Patching (%s): %d of %d candidate pages had a similar reference; %d patches kept, mean %.0f bytes; %d references\n",
		pt.Name, pt.WithCandidates, pt.Examined, pt.PatchesKept, pt.MeanPatchBytes, pt.References)
	if h := a.holeBytes(); h > 0 {
		r := a.resident()
		fmt.Fprintf(w, "Resident memory only (%s MiB of holes and never-touched pages left out of both):\n"+
			"  %s MiB; vmux saves %s MiB (%s), the KSM-equivalent %s MiB (%s)",
			mb(h), mb(r.Bytes), mb(r.SavedBytes), pct(r.SavedBytes, r.Bytes), mb(r.IdenticalOnlySavedBytes), pct(r.IdenticalOnlySavedBytes, r.Bytes))
		if r.IdenticalOnlySavedBytes > 0 {
			fmt.Fprintf(w, ": %.2fx", r.SavingsRatio)
		}
		fmt.Fprintln(w)
	}
	for i, m := range a.metas {
		if a.asRead[i] {
			fmt.Fprintf(w, "Changed while read: %s: %d pages changed during the scan (analyzed as read: each page as the scan found it)\n", m.Name, a.changed[i])
		}
	}
	for _, m := range a.metas {
		if p := paddedBytes(m.Regions); p > 0 {
			fmt.Fprintf(w, "Padded: %s is not a whole number of pages; %d zero bytes pad its last page (unpack restores the exact size)\n", m.Name, p)
		}
	}
	skips := map[string][2]int64{}
	for _, m := range a.metas {
		for _, k := range m.Skipped {
			why := k.Reason
			if strings.HasPrefix(why, "not readable (") {
				why = "not readable (PROT_NONE guards and reservations)"
			}
			v := skips[why]
			skips[why] = [2]int64{v[0] + 1, v[1] + int64(k.Len)}
		}
	}
	for _, why := range slices.Sorted(maps.Keys(skips)) {
		fmt.Fprintf(w, "Not read: %d ranges, %s MiB: %s\n", skips[why][0], mb(skips[why][1]), why)
	}
	ph := st.Phases
	fmt.Fprintf(w, "Time: %.2fs (scan %.2fs, patch %.2fs, compress %.2fs; reading sources included: %.2fs)\n",
		ph.Total.Seconds(), ph.Scan.Seconds(), ph.Patch.Seconds(), ph.Compress.Seconds(), a.elapsed.Seconds())
}
