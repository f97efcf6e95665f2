package source

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"sort"
)

// maxRegionLen bounds a segment (2^57: a 5-level x86-64 address space).
const maxRegionLen = 1 << 57

// maxResidue bounds the non-memory bytes of a core file kept in memory.
const maxResidue = 64 << 20

// OpenELFCore opens an ELF core file (gcore, QEMU dump-guest-memory, a kernel
// core dump): one region per PT_LOAD segment, at its virtual address, of
// p_memsz bytes of which the first p_filesz come from the file and the rest
// are zero. The bytes that are not segment data (headers, notes) are kept as
// the residue so that unpack rebuilds the file exactly.
func OpenELFCore(path string) (Source, error) {
	f, st, err := openFile(path)
	if err != nil {
		return nil, err
	}
	s := &fileSource{f: f, st: st, path: path, kind: KindELFCore, size: st.Size()}
	if err := s.loadELF(); err != nil {
		f.Close()
		return nil, &Error{Source: path, Op: "read ELF core", Err: err}
	}
	return s, nil
}

func (s *fileSource) loadELF() (err error) {
	// debug/elf validates most of the header; guard against any panic on a
	// hostile file all the same: bad input must be an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parse headers: %v: %w", r, ErrCorrupt)
		}
	}()
	ef, err := elf.NewFile(s.f)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("headers point past the end of the %d-byte file: %w", s.size, ErrTruncated)
	}
	if err != nil {
		return fmt.Errorf("parse headers: %v: %w", err, ErrCorrupt)
	}
	if ef.Type != elf.ET_CORE {
		return fmt.Errorf("ELF type %v, want ET_CORE: %w", ef.Type, ErrCorrupt)
	}
	type span struct{ off, end int64 }
	var spans []span
	for i, p := range ef.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		if p.Filesz > p.Memsz {
			return fmt.Errorf("segment %d: p_filesz %d > p_memsz %d: %w", i, p.Filesz, p.Memsz, ErrCorrupt)
		}
		if p.Off > uint64(s.size) || p.Filesz > uint64(s.size)-p.Off {
			return fmt.Errorf("segment %d ends at %d, past the end of the %d-byte file: %w", i, p.Off+p.Filesz, s.size, ErrTruncated)
		}
		if p.Memsz > maxRegionLen {
			return fmt.Errorf("segment %d: p_memsz %d is larger than any address space: %w", i, p.Memsz, ErrCorrupt)
		}
		if p.Memsz == 0 {
			continue
		}
		s.regions = append(s.regions, Region{
			Name:    fmt.Sprintf("segment %d", i),
			Start:   p.Vaddr,
			Len:     p.Memsz,
			Perms:   progPerms(p.Flags),
			FileOff: int64(p.Off),
			FileLen: p.Filesz,
		})
		if p.Filesz > 0 {
			spans = append(spans, span{int64(p.Off), int64(p.Off + p.Filesz)})
		}
	}
	// Residue: every file byte outside the segments' data.
	sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
	var pos, total int64
	for _, sp := range append(spans, span{s.size, s.size}) {
		if sp.off < pos {
			return fmt.Errorf("PT_LOAD segments overlap in the file at offset %d: %w", sp.off, ErrCorrupt)
		}
		if sp.off > pos {
			total += sp.off - pos
			if total > maxResidue {
				return fmt.Errorf("more than %d bytes outside PT_LOAD segments: %w", maxResidue, ErrCorrupt)
			}
			b := make([]byte, sp.off-pos)
			if _, err := s.f.ReadAt(b, pos); err != nil {
				return fmt.Errorf("read headers at %d: %w", pos, err)
			}
			s.residue = append(s.residue, Extent{Off: pos, Data: b})
		}
		pos = sp.end
	}
	return nil
}

func progPerms(f elf.ProgFlag) string {
	b := []byte("---")
	if f&elf.PF_R != 0 {
		b[0] = 'r'
	}
	if f&elf.PF_W != 0 {
		b[1] = 'w'
	}
	if f&elf.PF_X != 0 {
		b[2] = 'x'
	}
	return string(b)
}
