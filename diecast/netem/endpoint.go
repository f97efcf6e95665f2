package netem

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
)

// Endpoint carries IP packets between one node and the emulator: each Read
// returns exactly one packet the node sent, each Write hands the node one
// packet. Close must unblock a pending Read (which then returns an error).
// A TUN device in IFF_TUN|IFF_NO_PI mode is the real one (NewTUN); Fake
// pairs stand in for it in tests. *os.File of such a TUN satisfies it too.
type Endpoint interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

// Fake is one side of an in-memory endpoint pair: what one side writes,
// the other reads, one packet per call, in order. A side holds up to depth
// unread packets; writes beyond that are dropped (as a full NIC ring drops)
// and counted. Safe for concurrent use.
type Fake struct {
	in     chan []byte // packets for this side to read
	free   chan []byte // recycled buffers of the packets it sends
	peer   *Fake
	closed chan struct{}
	once   sync.Once
	drops  atomic.Uint64
}

// NewFakePair returns two connected endpoints with depth packets of
// buffering each way. Give one to the emulator, use the other as the node.
func NewFakePair(depth int) (*Fake, *Fake) {
	if depth <= 0 {
		depth = 1024
	}
	mk := func() *Fake {
		return &Fake{in: make(chan []byte, depth), free: make(chan []byte, depth), closed: make(chan struct{})}
	}
	a, b := mk(), mk()
	a.peer, b.peer = b, a
	return a, b
}

// Read returns the next packet written by the peer, blocking until one
// comes or this side is closed (os.ErrClosed). Short p truncates.
func (f *Fake) Read(p []byte) (int, error) {
	select {
	case b := <-f.in:
		n := copy(p, b)
		select {
		case f.peer.free <- b[:cap(b)]:
		default:
		}
		return n, nil
	case <-f.closed:
		return 0, os.ErrClosed
	}
}

// Write hands one packet to the peer. It never blocks: when the peer is
// full or closed the packet is dropped (and counted in Drops).
func (f *Fake) Write(p []byte) (int, error) {
	select {
	case <-f.closed:
		return 0, os.ErrClosed
	default:
	}
	var b []byte
	select {
	case b = <-f.free:
	default:
	}
	if cap(b) < len(p) {
		b = make([]byte, len(p), max(len(p), 2048))
	}
	b = b[:len(p)]
	copy(b, p)
	select {
	case f.peer.in <- b:
		return len(p), nil
	default:
		f.drops.Add(1)
		return len(p), nil
	}
}

// Close makes pending and later Reads and Writes of this side fail.
func (f *Fake) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// Drops counts packets this side wrote that the peer had no room for.
func (f *Fake) Drops() uint64 { return f.drops.Load() }

var _ Endpoint = (*Fake)(nil)

// errClosed reports whether err means the endpoint was closed.
func errClosed(err error) bool { return errors.Is(err, os.ErrClosed) }
