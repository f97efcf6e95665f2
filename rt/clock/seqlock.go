package clock

import (
	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// The seqlock over the page: one writer (the owner, under Clock.mu) makes
// seq odd, writes the data words, makes it even again; readers copy the
// data words between two equal even readings of seq. The data words are
// [8, PageUsed): everything but seq itself, written 32 bits at a time (the
// replacement vDSO reads them the same way).

// begin enters the write side (seq even -> odd).
func (c *Clock) begin() { linux.SharedAdd64(c.mem, vclock.PageOffSeq, 1) }

// end leaves it (seq odd -> even).
func (c *Clock) end() { linux.SharedAdd64(c.mem, vclock.PageOffSeq, 1) }

// write stores p inside the seqlock.
func (c *Clock) write(p *vclock.Params) {
	c.begin()
	c.encode(p)
	c.end()
}

// encode writes p's data words (the caller is inside the write side).
func (c *Clock) encode(p *vclock.Params) {
	var buf [vclock.PageSize]byte
	_ = vclock.EncodePage(buf[:], p) // buf has the right size
	for off := 8; off < vclock.PageUsed; off += 4 {
		linux.SharedStore32(c.mem, off, le32(buf[off:]))
	}
}

func (c *Clock) snapshot() []byte { return snapshot(c.mem) }

// snapshot copies the data words of a page mapping.
func snapshot(mem []byte) []byte {
	buf := make([]byte, vclock.PageSize)
	for off := 8; off < vclock.PageUsed; off += 4 {
		put32(buf[off:], linux.SharedLoad32(mem, off))
	}
	return buf
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
