package vclock

import (
	"encoding/binary"
	"fmt"
)

// The shared clock page: one 4096-byte page, little-endian, every field
// naturally aligned so that readers and the writer access whole words
// atomically. The replacement vDSO (dilate/vdso/vdso.c) reads the same
// offsets; a test checks that both agree.
//
//	off  size  field
//	  0    8   seq        seqlock sequence, odd while a writer is inside
//	  8    4   magic      PageMagic ("VMXC")
//	 12    4   version    PageVersion
//	 16    8   mult       round(2^32/k), 0 while paused
//	 24    8   cpu_mult   round(2^32/(share x k))
//	 32    4   flags      FlagPaused
//	 36    4   writer     pid of the writer inside the seqlock, else 0
//	 40    4   tdf_num    k = tdf_num/tdf_den (kept while paused)
//	 44    4   tdf_den
//	 48    4   share_num  CPU share = share_num/share_den
//	 52    4   share_den
//	 56    4   phase      writer progress, for recovery from a dead writer
//	 60    4   reserved (0)
//	 64  192   base[12]   {real_base int64, virt_base int64} per clock id
//	256 1792   reserved (0)
//	2048 256   backup     copy of bytes [0, 256) taken by the writer before
//	                      it changes them (recovery only; readers ignore it)
const (
	PageSize    = 4096
	PageMagic   = 0x43584d56 // "VMXC" little-endian
	PageVersion = 1

	PageOffSeq      = 0
	PageOffMagic    = 8
	PageOffVersion  = 12
	PageOffMult     = 16
	PageOffCPUMult  = 24
	PageOffFlags    = 32
	PageOffWriter   = 36
	PageOffTDFNum   = 40
	PageOffTDFDen   = 44
	PageOffShareNum = 48
	PageOffShareDen = 52
	PageOffPhase    = 56
	PageOffBases    = 64
	PageBaseSize    = 16 // real_base at +0, virt_base at +8
	// PageUsed is the size of the part of the page that holds data.
	PageUsed = PageOffBases + NumClocks*PageBaseSize
	// PageOffBackup is where a writer saves [0, PageUsed) before changing it.
	PageOffBackup = 2048
)

// FlagPaused is set in flags while virtual time is frozen.
const FlagPaused = 1

var le = binary.LittleEndian

// EncodePage writes p into page (PageSize bytes) at the offsets above. It
// leaves seq, writer, phase and backup alone: those belong to the seqlock.
func EncodePage(page []byte, p *Params) error {
	if len(page) != PageSize {
		return fmt.Errorf("encoding clock page: %w: %d bytes, want %d", ErrBadPage, len(page), PageSize)
	}
	le.PutUint32(page[PageOffMagic:], PageMagic)
	le.PutUint32(page[PageOffVersion:], PageVersion)
	le.PutUint64(page[PageOffMult:], p.Mult)
	le.PutUint64(page[PageOffCPUMult:], p.CPUMult)
	var flags uint32
	if p.Paused {
		flags |= FlagPaused
	}
	le.PutUint32(page[PageOffFlags:], flags)
	le.PutUint32(page[PageOffTDFNum:], uint32(p.TDF.Num))
	le.PutUint32(page[PageOffTDFDen:], uint32(p.TDF.Den))
	le.PutUint32(page[PageOffShareNum:], uint32(p.Share.Num))
	le.PutUint32(page[PageOffShareDen:], uint32(p.Share.Den))
	for i, b := range p.Bases {
		off := PageOffBases + i*PageBaseSize
		le.PutUint64(page[off:], uint64(b.Real))
		le.PutUint64(page[off+8:], uint64(b.Virt))
	}
	return nil
}

// DecodePage reads Params from page and checks that they are coherent.
func DecodePage(page []byte) (Params, error) {
	if len(page) != PageSize {
		return Params{}, fmt.Errorf("decoding clock page: %w: %d bytes, want %d", ErrBadPage, len(page), PageSize)
	}
	if m := le.Uint32(page[PageOffMagic:]); m != PageMagic {
		return Params{}, fmt.Errorf("decoding clock page: %w: magic %#x, want %#x (not a vmux clock)", ErrBadPage, m, PageMagic)
	}
	if v := le.Uint32(page[PageOffVersion:]); v != PageVersion {
		return Params{}, fmt.Errorf("decoding clock page: %w: layout version %d, this vmux reads %d (use the same vmux binary as the run)", ErrBadPage, v, PageVersion)
	}
	p := Params{
		Mult:    le.Uint64(page[PageOffMult:]),
		CPUMult: le.Uint64(page[PageOffCPUMult:]),
		Paused:  le.Uint32(page[PageOffFlags:])&FlagPaused != 0,
		TDF:     TDF{uint64(le.Uint32(page[PageOffTDFNum:])), uint64(le.Uint32(page[PageOffTDFDen:]))},
		Share:   Share{uint64(le.Uint32(page[PageOffShareNum:])), uint64(le.Uint32(page[PageOffShareDen:]))},
	}
	for i := range p.Bases {
		off := PageOffBases + i*PageBaseSize
		p.Bases[i] = Base{Real: int64(le.Uint64(page[off:])), Virt: int64(le.Uint64(page[off+8:]))}
	}
	if err := p.Validate(); err != nil {
		return Params{}, fmt.Errorf("decoding clock page: %w", err)
	}
	return p, nil
}

// Validate checks that p is coherent: valid TDF and share, Mult matching
// the TDF (or 0 exactly when paused), CPUMult matching share x k.
func (p *Params) Validate() error {
	if err := p.TDF.Validate(); err != nil {
		return err
	}
	if err := p.Share.Validate(); err != nil {
		return err
	}
	want := p.TDF.Mult()
	if p.Paused {
		want = 0
	}
	if p.Mult != want {
		return fmt.Errorf("%w: mult %d does not match k=%v paused=%v (want %d)", ErrBadPage, p.Mult, p.TDF, p.Paused, want)
	}
	if c := CPUMult(p.Share, p.TDF); p.CPUMult != c {
		return fmt.Errorf("%w: cpu_mult %d does not match share %v x k %v (want %d)", ErrBadPage, p.CPUMult, p.Share, p.TDF, c)
	}
	return nil
}
