package netem

// packet is one IP packet in flight: a pooled buffer and where it is on
// its path. Packets are stored by value in rings: no allocation per packet.
type packet struct {
	buf  *[]byte
	n    int32
	path int32 // index into Emulator.paths
	hop  int32 // index of the link it is on
	at   int64 // ns (since Emulator.base) it reaches the end of that link
}

// ring is a growable FIFO of packets, ordered by at.
type ring struct {
	buf        []packet
	head, size int
}

func (r *ring) len() int { return r.size }

func (r *ring) front() *packet { return &r.buf[r.head] }

func (r *ring) grow() {
	n := max(16, 2*len(r.buf))
	nb := make([]packet, n)
	for i := 0; i < r.size; i++ {
		nb[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = nb, 0
}

// push appends p; when reordering is allowed the ring may not be ordered
// at the tail, so p is sifted back to its place (jitter is small, so this
// is short). It reports whether p became the front.
func (r *ring) push(p packet) bool {
	if r.size == len(r.buf) {
		r.grow()
	}
	mask := len(r.buf) - 1 // len is a power of two
	i := r.size
	for i > 0 {
		prev := &r.buf[(r.head+i-1)&mask]
		if prev.at <= p.at {
			break
		}
		r.buf[(r.head+i)&mask] = *prev
		i--
	}
	r.buf[(r.head+i)&mask] = p
	r.size++
	return i == 0
}

func (r *ring) pop() packet {
	p := r.buf[r.head]
	r.buf[r.head] = packet{}
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.size--
	return p
}
