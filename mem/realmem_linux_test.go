//go:build linux

package mem

import (
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

// TestRealProcessMemory runs the engine over the memory of real interpreter
// and server processes started here, checks every page rebuilds exactly, and
// that the default detector beats the paper's baseline on the same memory.
func TestRealProcessMemory(t *testing.T) {
	testutil.Short(t)
	procs := []*proc{
		startProc(t, "python3", 1, 20000),
		startProc(t, "python3", 2, 30000),
		startProc(t, "redis", 1, 20000),
		startProc(t, "redis", 2, 20000),
		startProc(t, "perl", 1, 20000),
	}
	c := captureProcs(t, procs)
	if raceEnabled {
		c.sample(1500)
	}
	one := c.corpus(func(int) Domain { return "" })
	results := map[string]*Result{}
	for _, det := range []string{"hsd21", "sketch"} {
		res := one.run(t, Config{Detector: det})
		one.check(t, res, false)
		results[det] = res
		st := res.Stats
		t.Logf("%-6s total %d MiB stored %d KiB (KSM-eq %d KiB): zero %d shared %d patched %d compressed %d raw %d; candidates %d, patch mean %.0f B, ratio %.2f, patch %v",
			det, st.Total.TotalBytes>>20, st.Total.StoredBytes>>10, st.KSM.StoredBytes>>10,
			st.Total.Pages.Zero, st.Total.Pages.Shared, st.Total.Pages.Patched, st.Total.Pages.Compressed, st.Total.Pages.Raw,
			st.Patching.WithCandidates, st.Patching.MeanPatchBytes, st.SavingsRatio, st.Phases.Patch)
	}
	h, s := results["hsd21"].Stats, results["sketch"].Stats
	if s.Total.Pages.Patched <= h.Total.Pages.Patched {
		t.Errorf("sketch patched %d pages, hsd21 %d: the default detector must find more", s.Total.Pages.Patched, h.Total.Pages.Patched)
	}
	if s.Total.SavedBytes <= h.Total.SavedBytes {
		t.Errorf("sketch saved %d bytes, hsd21 %d: the default detector must save more", s.Total.SavedBytes, h.Total.SavedBytes)
	}
	if m := s.Total.MetadataBytes; float64(m) > 0.01*float64(s.Total.TotalBytes) {
		t.Errorf("metadata %d bytes > 1%% of %d scanned", m, s.Total.TotalBytes)
	}
	if s.SavingsRatio <= 1 {
		t.Errorf("vmux saves %.2fx what KSM would: must save more", s.SavingsRatio)
	}
	// one domain per process: nothing crosses processes, all still rebuilds
	per := c.corpus(func(i int) Domain { return Domain(c.names[i]) })
	res := per.run(t, Config{})
	per.check(t, res, false)
	if res.Stats.Total.StoredBytes < res.Stats.Alternate.StoredBytes {
		t.Errorf("per-process domains stored %d < cross-domain %d", res.Stats.Total.StoredBytes, res.Stats.Alternate.StoredBytes)
	}
}
