// Package netem is vmux's user-space link emulator: it forwards IP packets
// between node endpoints (TUN devices, one per node sandbox) over a
// compiled topology.Network, through links that model bandwidth, a finite
// drop-tail queue, propagation delay, jitter and random loss. This kernel
// has no tc netem, so delay and loss cannot come from the kernel.
//
// In a nutshell: one reader goroutine per endpoint reads a packet, looks up
// the destination node by IPv4 address, and offers the packet to the first
// link (pipe) of the precomputed shortest path. A pipe is a virtual-time
// model (ModelNet style): a FIFO transmitter at the link bandwidth (the
// packet starts when the previous one finished; the backlog at time t is
// (busyUntil - t) x bandwidth, and a packet that does not fit in the queue
// is dropped), then the propagation delay plus uniform jitter (never
// reordering unless the link allows it), then random loss from a seeded
// per-link stream. The model computes the packet's arrival time at once;
// the packet waits in the pipe's ring (FIFO, no allocation) until then.
// One scheduler goroutine keeps a heap of pipes keyed by their earliest
// arrival, moves due packets to the next pipe of their path (entering it
// at the time they arrived, so scheduler lateness does not accumulate over
// hops) or writes them to the destination endpoint, and sleeps until the
// next deadline: ppoll on an eventfd (hrtimer precision, woken by readers
// with earlier deadlines) for far deadlines, a yielding spin for the last
// Options.SpinWindow. Link parameters are the Real (TDF-scaled) ones.
//
// Concurrency: Emulator.mu guards all pipes, the heap and sleepUntil;
// readers hold it to enqueue one packet, the scheduler to pop a batch.
// Endpoint writes happen outside the lock. Close stops everything through
// a flag, the eventfd and closing the endpoints; no loop checks a context.
package netem
