package live

import (
	"os"
	"sort"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem"
)

// Status is what `vmux mem live status --json` prints (document version
// 1; fields are only added). Sizes are bytes, latencies microseconds.
type Status struct {
	Version     int       `json:"version"`
	EnginePid   int       `json:"engine_pid"`
	Started     time.Time `json:"started"`
	Detector    string    `json:"detector"`
	Codec       string    `json:"codec"`
	CrossDomain bool      `json:"cross_domain"`
	ColdSeconds float64   `json:"cold_seconds"`

	Processes []ProcessStatus `json:"processes"`

	// PagesHeld by how each is stored: a content held by k pages counts
	// once as its own kind and k-1 times as shared.
	PagesHeld int64      `json:"pages_held"`
	Held      KindCounts `json:"held"`
	// FreedBytes is what left the processes (pages held x 4096).
	FreedBytes int64 `json:"freed_bytes"`
	// StoreBytes is everything vmux holds for it: the payload file's
	// memory, the journal, and the engine's own anonymous memory (its
	// indexes, page tables, buffers).
	StoreBytes        int64 `json:"store_bytes"`
	StorePayloadBytes int64 `json:"store_payload_bytes"`
	StoreLiveBytes    int64 `json:"store_live_bytes"`
	JournalBytes      int64 `json:"journal_bytes"`
	// PayloadByKind splits the stored payload (before the payload file's
	// own slack: StorePayloadBytes - the sum) by kind of content.
	PayloadByKind PayloadKinds `json:"payload_by_kind"`
	// MetadataBytes estimates the pool's records (part of EngineBytes).
	MetadataBytes int64 `json:"metadata_bytes"`
	EngineBytes   int64 `json:"engine_bytes"`
	// NetSavedBytes = FreedBytes - StoreBytes: what the host gained.
	NetSavedBytes int64 `json:"net_saved_bytes"`
	// References are contents kept only as the reference of patches.
	References int64 `json:"references"`

	Faults     int64   `json:"faults"`
	FaultP50us float64 `json:"fault_p50_us"`
	FaultP99us float64 `json:"fault_p99_us"`
	// FaultsBy gives count and latency of faults by how they were served.
	FaultsBy map[string]FaultStats `json:"faults_by"`
	// CameBackHot counts held pages faulted back sooner than the cold
	// threshold (reads the clock could not see).
	CameBackHot int64 `json:"came_back_hot"`
	// CPUSeconds is the engine's CPU time since it started.
	CPUSeconds float64 `json:"cpu_seconds"`
	Uptime     float64 `json:"uptime_seconds"`
}

// KindCounts counts held pages by how they are stored.
type KindCounts struct {
	Zero       int64 `json:"zero"`
	Shared     int64 `json:"shared"`
	Patched    int64 `json:"patched"`
	Compressed int64 `json:"compressed"`
	Raw        int64 `json:"raw"`
}

// PayloadKinds is payload bytes by kind of content.
type PayloadKinds struct {
	Patched    int64 `json:"patched"`
	Compressed int64 `json:"compressed"`
	Raw        int64 `json:"raw"`
}

// FaultStats is the count and latency of one kind of fault.
type FaultStats struct {
	Count int64   `json:"count"`
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
}

// ProcessStatus is one managed process.
type ProcessStatus struct {
	Pid         int        `json:"pid"`
	Name        string     `json:"name"`
	Domain      string     `json:"domain"`
	RSSBefore   int64      `json:"rss_before"`
	RSSNow      int64      `json:"rss_now"`
	PagesHeld   int64      `json:"pages_held"`
	Held        KindCounts `json:"held"`
	Evicted     int64      `json:"evicted"`
	Faults      int64      `json:"faults"`
	FirstTouch  int64      `json:"first_touch_faults"`
	CameBackHot int64      `json:"came_back_hot"`
	Rejected    int64      `json:"rejected"`
	Removed     int64      `json:"removed_by_process"`
	FaultP50us  float64    `json:"fault_p50_us"`
	FaultP99us  float64    `json:"fault_p99_us"`
	ColdSeconds float64    `json:"cold_seconds"`
	ForkChild   bool       `json:"fork_child,omitempty"`
}

// Status reports the engine's state.
func (e *Engine) Status() Status {
	s := Status{Version: 1, EnginePid: os.Getpid(), Started: e.started, Detector: e.cfg.Mem.Detector,
		Codec: e.cfg.Mem.Codec, CrossDomain: e.cfg.Mem.CrossDomain, ColdSeconds: e.cfg.Cold.Seconds(),
		FaultsBy: map[string]FaultStats{}}
	e.mu.Lock()
	ts := make([]*target, 0, len(e.targets))
	for _, t := range e.targets {
		ts = append(ts, t)
	}
	e.mu.Unlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].id < ts[j].id })
	var all [nMech]histogram
	firstOf := map[CID]bool{} // contents already counted as their own kind
	for _, t := range ts {
		t.mu.Lock()
		ps := ProcessStatus{Pid: t.pid, Name: t.name, Domain: string(t.domain), RSSBefore: t.rssBefore,
			PagesHeld: t.st.held, Evicted: t.st.evicted, Faults: t.st.faults, FirstTouch: t.st.zeroFills,
			CameBackHot: t.st.cameBack, Rejected: t.st.rejected, Removed: t.st.removed,
			ColdSeconds: float64(t.threshold) * e.cfg.Interval.Seconds(), ForkChild: t.pid == 0 || t.rssBefore == 0}
		var held histogram
		for m := range t.st.hist {
			all[m].merge(&t.st.hist[m])
			if m != mechFirst {
				held.merge(&t.st.hist[m])
			}
		}
		var ids []CID
		t.pt.each(0, ^uint64(0), func(a uint64, id CID) { ids = append(ids, id) })
		pid := t.pid
		t.mu.Unlock()
		ps.FaultP50us, ps.FaultP99us = held.quantile(0.5), held.quantile(0.99)
		for _, id := range ids {
			k := e.classify(id, firstOf)
			ps.Held.add(k)
			s.Held.add(k)
		}
		if pid != 0 {
			if pi, err := readProc(pid); err == nil {
				ps.RSSNow = pi.rss
			}
		}
		s.Processes = append(s.Processes, ps)
		s.PagesHeld += ps.PagesHeld
		s.Faults += ps.Faults
		s.CameBackHot += ps.CameBackHot
	}
	var held histogram
	for m := range all {
		if all[m].n > 0 {
			s.FaultsBy[mechNames[m]] = FaultStats{Count: all[m].n, P50us: all[m].quantile(0.5), P99us: all[m].quantile(0.99)}
		}
		if m != mechFirst {
			held.merge(&all[m])
		}
	}
	s.FaultP50us, s.FaultP99us = held.quantile(0.5), held.quantile(0.99)
	ps := e.pool.Stats()
	s.References = ps.Contents - int64(len(firstOf))
	s.PayloadByKind = PayloadKinds{Patched: ps.PatchedBytes, Compressed: ps.CompressedBytes, Raw: ps.RawBytes}
	s.MetadataBytes = e.pool.MetadataBytes()
	s.FreedBytes = s.PagesHeld * pageSize
	s.StorePayloadBytes = e.payloads.Bytes()
	s.StoreLiveBytes = e.payloads.Live()
	s.JournalBytes = e.journal.Size()
	if pi, err := readProc(os.Getpid()); err == nil {
		s.EngineBytes = pi.anon
	}
	s.StoreBytes = s.StorePayloadBytes + s.JournalBytes + s.EngineBytes
	s.NetSavedBytes = s.FreedBytes - s.StoreBytes
	if u, sy, err := linux.Rusage(); err == nil {
		s.CPUSeconds = (u + sy).Seconds()
	}
	s.Uptime = time.Since(e.started).Seconds()
	return s
}

// classify says how one held page counts: its content's own kind the
// first time the content is seen, shared after.
func (e *Engine) classify(id CID, seen map[CID]bool) mem.Kind {
	if id == ZeroCID {
		return mem.KindZero
	}
	if seen[id] {
		return mem.KindShared
	}
	seen[id] = true
	return e.pool.Kind(id)
}

func (k *KindCounts) add(kind mem.Kind) {
	switch kind {
	case mem.KindZero:
		k.Zero++
	case mem.KindShared:
		k.Shared++
	case mem.KindPatched:
		k.Patched++
	case mem.KindCompressed:
		k.Compressed++
	case mem.KindRaw:
		k.Raw++
	}
}
