// Package tcpfreeze keeps the kernel TCP of an experiment's nodes from
// timing out while the experiment is paused.
//
// In a nutshell: a node's TCP timers (RTO, tail loss probe, zero-window
// probe, delayed ACK) run on the host's real clock, which a pause of the
// experiment's clock does not stop, while the link emulator holds every
// packet in flight. A sender would therefore time out and retransmit
// about 4 times in a 5 s pause. No stock-kernel knob stops or pushes back
// timers already armed (TCP_REPAIR does not; rto_min knobs only act on
// new sockets: docs/design/network.md, "Pausing an experiment"), but
// the kernel defers every timer of a socket whose lock a process holds
// (sock_owned_by_user), and when the lock is released it first processes
// the packets that queued meanwhile in the socket's backlog, then the
// deferred timer, which finds its deadline pushed out by the ACKs just
// processed and does nothing.
//
// Freeze takes those locks from outside the node: it reads the node's
// /proc/net/tcp{,6} (from a thread in its netns) for sockets with data, a
// SYN or a FIN in flight to a peer across the emulator, finds their
// descriptors in the node's processes (/proc/PID/fd), copies each with
// pidfd_getfd, and calls setsockopt(TCP_MD5SIG) on the copy from a
// dedicated OS thread with an argument that runs into a page registered
// MISSING with a userfaultfd (internal/linux.SockLockArena): the kernel
// copies that argument after lock_sock(), so the call sleeps there with
// the lock held. The uffd's fault message says the socket is locked.
// Releasing a socket fills its page with zeros: the copy completes, the
// call fails with EINVAL (no address family) and changes nothing, and
// release_sock() runs. If the holding process dies (kill -9 of the
// daemon), the kernel ends the sleeping calls and every lock is released.
//
// Costs and bounds: per held socket one descriptor, one OS thread asleep
// in the kernel and two pages of one shared mapping; at most Options.Max
// sockets per Frozen. Probe checks at start-up that this kernel holds the
// lock across the blocked call (ErrUnsupported otherwise). Anything that
// takes a held socket's lock waits in uninterruptible sleep until the
// release: the node's own calls on that socket, getsockopt(TCP_INFO),
// sock_diag dumps that ask for tcp_info (ss -i).
package tcpfreeze
