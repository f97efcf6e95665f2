package source

import "encoding/binary"

// Bits of a /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
const (
	pmPresent = 1 << 63
	pmSwapped = 1 << 62
)

// entry returns the pagemap entry of the page at addr, loading a window of
// entries starting there when addr is outside the one held. ok is false if
// the entry cannot be read (then the page is read, never assumed zero).
func (p *Process) entry(addr uint64) (uint64, bool) {
	if addr < p.pmAddr || addr >= p.pmAddr+p.pmN*PageSize {
		n, err := p.pagemap.ReadAt(p.pmBuf, int64(addr/PageSize*8))
		p.pmAddr, p.pmN = addr, uint64(n/8)
		if p.pmN == 0 {
			_ = err
			return 0, false
		}
	}
	i := (addr - p.pmAddr) / PageSize
	return binary.LittleEndian.Uint64(p.pmBuf[i*8:]), true
}

// absentPages counts the pages from addr (at most n bytes) that are neither
// present nor swapped: untouched anonymous memory, which reads as zero.
func (p *Process) absentPages(addr, n uint64) uint64 {
	var k uint64
	for ; k*PageSize < n; k++ {
		e, ok := p.entry(addr + k*PageSize)
		if !ok || e&(pmPresent|pmSwapped) != 0 {
			break
		}
	}
	return k
}

// presentRun returns how many bytes from addr (at most n) are present or
// swapped, to be read in one batch.
func (p *Process) presentRun(addr, n uint64) uint64 {
	var k uint64
	for ; k*PageSize < n; k++ {
		e, ok := p.entry(addr + k*PageSize)
		if ok && e&(pmPresent|pmSwapped) == 0 {
			break
		}
	}
	return max(k, 1) * PageSize
}
