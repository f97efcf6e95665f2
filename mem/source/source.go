package source

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PageSize is the unit of every source: 4 KiB.
const PageSize = 4096

// ChunkSize is how much a source reads per call (files) or per
// process_vm_readv (processes).
const ChunkSize = 4 << 20

// Kind names what a source reads.
type Kind string

// The kinds of sources.
const (
	KindRaw         Kind = "raw"
	KindELFCore     Kind = "elf-core"
	KindFirecracker Kind = "firecracker"
	KindProcess     Kind = "process"
)

// Region is one contiguous range of a source's memory.
type Region struct {
	Name  string // mapping path, "[heap]", "segment 3", "file"...
	Start uint64 // virtual address (processes, cores) or offset (raw files)
	Len   uint64 // exact bytes; pages = ceil(Len / PageSize)
	Perms string // "rw-p" for processes, "rwx" for core segments, "" otherwise
	// FileOff and FileLen say where the region's first FileLen bytes lie in
	// the source file (file sources only); the rest of the region is zero.
	FileOff int64
	FileLen uint64
}

// Pages is the number of pages the region occupies.
func (r Region) Pages() uint64 { return (r.Len + PageSize - 1) / PageSize }

// Skip is a part of a source that was not read, and why.
type Skip struct {
	Start, Len uint64
	Name       string
	Reason     string
}

// Extent is a run of bytes of a source file that is not memory (ELF headers
// and notes); kept so that the file can be rebuilt bit for bit.
type Extent struct {
	Off  int64
	Data []byte
}

// Sink receives a source's pages in order. Region starts a region; the pages
// that follow, until the next Region, belong to it. The Len passed to Region
// is what the source expects to read; a live process's region can end early
// (an unreadable page), so the final lengths are those of Source.Regions after
// Scan. Data passed to Pages is a whole number of pages and is valid only
// during the call.
type Sink interface {
	Region(r Region) error
	Pages(data []byte) error
	Zeros(n uint64) error
}

// Source is memory to analyze or store.
type Source interface {
	Name() string
	Kind() Kind
	Domain() string
	// Scan streams every page, region by region, into s. It may be called
	// once.
	Scan(s Sink) error
	// Regions lists what Scan read (complete after Scan).
	Regions() []Region
	// Skipped lists what Scan did not read, and why (complete after Scan).
	Skipped() []Skip
	// FileSize is the exact size of the source file (0 for processes).
	FileSize() int64
	// Residue lists the file bytes that are not memory (nil if none).
	Residue() []Extent
	Close() error
}

// Options select what Open reads.
type Options struct {
	// FileBacked includes file-backed mappings of live processes (by default
	// only anonymous and private writable mappings are read).
	FileBacked bool
	// Domain, if set, overrides the source's default trust domain.
	Domain string
}

// Open opens a SOURCE argument: "pid:N", "core:PATH", "raw:PATH",
// "fc:MEMFILE[,REGIONS.json]", or a path (an ELF core file is recognized by its
// header; anything else is a raw image).
func Open(spec string, o Options) (Source, error) {
	var (
		s   Source
		err error
	)
	switch {
	case strings.HasPrefix(spec, "pid:"):
		pid, perr := strconv.Atoi(spec[4:])
		if perr != nil || pid <= 0 {
			return nil, fmt.Errorf("open source %q: %w", spec, ErrBadSpec)
		}
		s, err = OpenProcess(pid, o.FileBacked)
	case strings.HasPrefix(spec, "core:"):
		s, err = OpenELFCore(spec[5:])
	case strings.HasPrefix(spec, "raw:"):
		s, err = OpenRaw(spec[4:])
	case strings.HasPrefix(spec, "fc:"):
		mem, regions, _ := strings.Cut(spec[3:], ",")
		s, err = OpenFirecracker(mem, regions)
	case spec == "":
		return nil, fmt.Errorf("open source %q: %w", spec, ErrBadSpec)
	default:
		isCore, cerr := looksLikeELFCore(spec)
		if cerr != nil {
			return nil, cerr
		}
		if isCore {
			s, err = OpenELFCore(spec)
		} else {
			s, err = OpenRaw(spec)
		}
	}
	if err != nil {
		return nil, err
	}
	if o.Domain != "" {
		s = withDomain{s, o.Domain}
	}
	return s, nil
}

type withDomain struct {
	Source
	domain string
}

func (w withDomain) Domain() string { return w.domain }

// looksLikeELFCore reports whether path starts with an ELF header of type
// ET_CORE.
func looksLikeELFCore(path string) (bool, error) {
	f, _, err := openFile(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var hdr [18]byte
	n, _ := f.ReadAt(hdr[:], 0)
	if n < len(hdr) || string(hdr[:4]) != "\x7fELF" {
		return false, nil
	}
	// e_type at offset 16, in the file's byte order (EI_DATA at 5).
	t := uint16(hdr[16]) | uint16(hdr[17])<<8
	if hdr[5] == 2 {
		t = uint16(hdr[16])<<8 | uint16(hdr[17])
	}
	return t == 4, nil
}

// Identity tells whether two sources read the same memory: the same file,
// whatever path named it (device and inode), or the same process, whichever
// of its threads was named (thread group and start time).
type Identity struct {
	File    os.FileInfo // file sources: what the open file is
	Process [2]uint64   // processes: thread group ID and start time
}

// Same reports whether a and b are the same memory.
func (a Identity) Same(b Identity) bool {
	if a.File != nil && b.File != nil {
		return os.SameFile(a.File, b.File)
	}
	return a.File == nil && b.File == nil && a.Process != [2]uint64{} && a.Process == b.Process
}

// identified is implemented by the sources that know what they read.
type identified interface{ identity() Identity }

// IdentityOf returns what s reads (ok false for a source that cannot say).
func IdentityOf(s Source) (Identity, bool) {
	if w, ok := s.(withDomain); ok {
		s = w.Source
	}
	if i, ok := s.(identified); ok {
		id := i.identity()
		return id, id.File != nil || id.Process != [2]uint64{}
	}
	return Identity{}, false
}

// OpenAll opens every SOURCE argument and refuses the same memory given
// twice (a file under two names or links, pid:N of a process and of one of
// its threads): its pages would be counted, and "saved", twice. On error
// every source already opened is closed.
func OpenAll(specs []string, o Options) ([]Source, error) {
	var out []Source
	fail := func(err error) ([]Source, error) {
		for _, s := range out {
			s.Close()
		}
		return nil, err
	}
	var ids []Identity
	for i, sp := range specs {
		s, err := Open(sp, o)
		if err != nil {
			return fail(err)
		}
		out = append(out, s)
		id, ok := IdentityOf(s)
		if !ok {
			ids = append(ids, Identity{})
			continue
		}
		for j, prev := range ids {
			if prev.Same(id) {
				return fail(fmt.Errorf("open source %q: %w: the same memory as %q", specs[i], ErrDuplicate, specs[j]))
			}
		}
		ids = append(ids, id)
	}
	return out, nil
}
