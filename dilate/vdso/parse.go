package vdso

import (
	"encoding/binary"
	"fmt"
)

// ParseVDSO finds the LINUX_2.6 __vdso_* functions in a vDSO image (the
// bytes of a process's [vdso] mapping, or Image()) the way the loaders do:
// through PT_LOAD, PT_DYNAMIC, DT_SYMTAB/DT_STRTAB, DT_HASH or DT_GNU_HASH
// for the symbol count, and DT_VERSYM/DT_VERDEF for the version. Section
// headers are not used. The results are offsets from the start of the
// mapping; add the mapping's base (Symbols.Add). Junk input returns an
// error wrapping ErrNotVDSO, never a panic.
func ParseVDSO(image []byte) (Symbols, error) {
	e := elfReader{b: image}
	syms, err := e.parse()
	if err != nil {
		return Symbols{}, fmt.Errorf("parsing vDSO: %w", err)
	}
	if syms.ClockGettime == 0 {
		return Symbols{}, fmt.Errorf("parsing vDSO: %w: __vdso_clock_gettime@LINUX_2.6", ErrNoSymbol)
	}
	return syms, nil
}

const (
	ptLoad    = 1
	ptDynamic = 2

	dtNull    = 0
	dtHash    = 4
	dtStrtab  = 5
	dtSymtab  = 6
	dtStrsz   = 10
	dtGNUHash = 0x6ffffef5
	dtVersym  = 0x6ffffff0
	dtVerdef  = 0x6ffffffc

	symSize = 24
)

type elfReader struct {
	b     []byte
	delta uint64 // p_vaddr - p_offset of the first PT_LOAD
}

func (e *elfReader) bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotVDSO}, args...)...)
}

func (e *elfReader) u16(off uint64) (uint16, bool) {
	if off > uint64(len(e.b)) || uint64(len(e.b))-off < 2 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(e.b[off:]), true
}

func (e *elfReader) u32(off uint64) (uint32, bool) {
	if off > uint64(len(e.b)) || uint64(len(e.b))-off < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(e.b[off:]), true
}

func (e *elfReader) u64(off uint64) (uint64, bool) {
	if off > uint64(len(e.b)) || uint64(len(e.b))-off < 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(e.b[off:]), true
}

// str reads a NUL-terminated string at off.
func (e *elfReader) str(off uint64) (string, bool) {
	if off >= uint64(len(e.b)) {
		return "", false
	}
	for i := off; i < uint64(len(e.b)); i++ {
		if e.b[i] == 0 {
			return string(e.b[off:i]), true
		}
	}
	return "", false
}

// fileOff converts a virtual address to an offset in the image.
func (e *elfReader) fileOff(vaddr uint64) (uint64, bool) {
	if vaddr < e.delta {
		return 0, false
	}
	off := vaddr - e.delta
	return off, off < uint64(len(e.b))
}

func (e *elfReader) parse() (Symbols, error) {
	if len(e.b) < 64 || string(e.b[:4]) != "\x7fELF" {
		return Symbols{}, e.bad("no ELF header")
	}
	if e.b[4] != 2 || e.b[5] != 1 {
		return Symbols{}, e.bad("not ELF64 little-endian")
	}
	if m, _ := e.u16(18); m != 62 {
		return Symbols{}, e.bad("machine %d, want x86-64 (62)", m)
	}
	phoff, _ := e.u64(32)
	phentsize, _ := e.u16(54)
	phnum, _ := e.u16(56)
	if phentsize != 56 {
		return Symbols{}, e.bad("program header size %d", phentsize)
	}
	var dynOff uint64
	foundLoad, foundDyn := false, false
	for i := uint64(0); i < uint64(phnum); i++ {
		ph := phoff + i*56
		typ, ok := e.u32(ph)
		if !ok {
			return Symbols{}, e.bad("program header %d out of range", i)
		}
		off, _ := e.u64(ph + 8)
		vaddr, _ := e.u64(ph + 16)
		switch {
		case typ == ptLoad && !foundLoad:
			if vaddr < off {
				return Symbols{}, e.bad("PT_LOAD vaddr below its offset")
			}
			foundLoad, e.delta = true, vaddr-off
		case typ == ptDynamic:
			foundDyn, dynOff = true, off
		}
	}
	if !foundLoad || !foundDyn {
		return Symbols{}, e.bad("no PT_LOAD or PT_DYNAMIC")
	}
	var strtab, symtab, hash, gnuHash, versym, verdef uint64
	var strsz uint64
	for i := uint64(0); ; i++ {
		tag, ok1 := e.u64(dynOff + i*16)
		val, ok2 := e.u64(dynOff + i*16 + 8)
		if !ok1 || !ok2 {
			return Symbols{}, e.bad("dynamic section not terminated")
		}
		if tag == dtNull {
			break
		}
		switch tag {
		case dtStrtab:
			strtab = val
		case dtSymtab:
			symtab = val
		case dtStrsz:
			strsz = val
		case dtHash:
			hash = val
		case dtGNUHash:
			gnuHash = val
		case dtVersym:
			versym = val
		case dtVerdef:
			verdef = val
		}
	}
	strOff, ok1 := e.fileOff(strtab)
	symOff, ok2 := e.fileOff(symtab)
	if strtab == 0 || symtab == 0 || !ok1 || !ok2 {
		return Symbols{}, e.bad("no DT_STRTAB or DT_SYMTAB")
	}
	if strsz > uint64(len(e.b))-strOff {
		return Symbols{}, e.bad("DT_STRSZ out of range")
	}
	nsym, err := e.symCount(hash, gnuHash)
	if err != nil {
		return Symbols{}, err
	}
	versions, err := e.versionNames(verdef, strOff)
	if err != nil {
		return Symbols{}, err
	}
	var verOff uint64
	if versym != 0 {
		var ok bool
		if verOff, ok = e.fileOff(versym); !ok {
			return Symbols{}, e.bad("DT_VERSYM out of range")
		}
	}
	var s Symbols
	for i := uint64(1); i < nsym; i++ {
		so := symOff + i*symSize
		name, _ := e.u32(so)
		info := e.b[min(so+4, uint64(len(e.b))-1)]
		shndx, ok3 := e.u16(so + 6)
		value, ok4 := e.u64(so + 8)
		if !ok3 || !ok4 {
			return Symbols{}, e.bad("symbol %d out of range", i)
		}
		if shndx == 0 || info&0xf != 2 || (info>>4 != 1 && info>>4 != 2) {
			continue // undefined, not a function, or not global/weak
		}
		if versym != 0 {
			v, ok := e.u16(verOff + i*2)
			if !ok {
				return Symbols{}, e.bad("DT_VERSYM entry %d out of range", i)
			}
			if versions[v&0x7fff] != "LINUX_2.6" {
				continue
			}
		}
		n, ok := e.str(strOff + uint64(name))
		if !ok {
			return Symbols{}, e.bad("symbol name %d out of range", i)
		}
		off := value - e.delta
		if value < e.delta || off >= uint64(len(e.b)) {
			return Symbols{}, e.bad("symbol %s outside the image", n)
		}
		switch n {
		case "__vdso_clock_gettime":
			s.ClockGettime = off
		case "__vdso_gettimeofday":
			s.Gettimeofday = off
		case "__vdso_time":
			s.Time = off
		case "__vdso_clock_getres":
			s.ClockGetres = off
		case "__vdso_getcpu":
			s.Getcpu = off
		case "__vdso_getrandom":
			s.Getrandom = off
		}
	}
	return s, nil
}

// symCount returns the number of dynamic symbols from DT_HASH's nchain or,
// without it, by walking DT_GNU_HASH to its last chain.
func (e *elfReader) symCount(hash, gnuHash uint64) (uint64, error) {
	if hash != 0 {
		off, ok := e.fileOff(hash)
		n, ok2 := e.u32(off + 4)
		if !ok || !ok2 || uint64(n) > uint64(len(e.b))/symSize {
			return 0, e.bad("DT_HASH out of range")
		}
		return uint64(n), nil
	}
	if gnuHash == 0 {
		return 0, e.bad("neither DT_HASH nor DT_GNU_HASH")
	}
	off, ok := e.fileOff(gnuHash)
	nbuckets, ok1 := e.u32(off)
	symoffset, ok2 := e.u32(off + 4)
	bloomSize, ok3 := e.u32(off + 8)
	if !ok || !ok1 || !ok2 || !ok3 || uint64(nbuckets)+uint64(bloomSize) > uint64(len(e.b)) {
		return 0, e.bad("DT_GNU_HASH out of range")
	}
	buckets := off + 16 + uint64(bloomSize)*8
	var last uint64
	for i := uint64(0); i < uint64(nbuckets); i++ {
		b, ok := e.u32(buckets + i*4)
		if !ok {
			return 0, e.bad("DT_GNU_HASH bucket out of range")
		}
		last = max(last, uint64(b))
	}
	if last < uint64(symoffset) {
		return uint64(symoffset), nil
	}
	chains := buckets + uint64(nbuckets)*4
	for i := last; ; i++ {
		h, ok := e.u32(chains + (i-uint64(symoffset))*4)
		if !ok {
			return 0, e.bad("DT_GNU_HASH chain out of range")
		}
		if h&1 != 0 {
			return i + 1, nil
		}
	}
}

// versionNames maps version indexes to names from DT_VERDEF.
func (e *elfReader) versionNames(verdef, strOff uint64) (map[uint16]string, error) {
	names := map[uint16]string{}
	if verdef == 0 {
		return names, nil
	}
	off, ok := e.fileOff(verdef)
	if !ok {
		return nil, e.bad("DT_VERDEF out of range")
	}
	for range 64 {
		ndx, ok1 := e.u16(off + 4)
		aux, ok2 := e.u32(off + 12)
		next, ok3 := e.u32(off + 16)
		name, ok4 := e.u32(off + uint64(aux))
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, e.bad("DT_VERDEF entry out of range")
		}
		n, ok := e.str(strOff + uint64(name))
		if !ok {
			return nil, e.bad("DT_VERDEF name out of range")
		}
		names[ndx] = n
		if next == 0 {
			return names, nil
		}
		off += uint64(next)
	}
	return nil, e.bad("DT_VERDEF chain too long")
}
