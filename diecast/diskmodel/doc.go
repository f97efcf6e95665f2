// Package diskmodel is the disk latency model of a DieCast scale model: in
// a node dilated by k, every disk I/O of its data directories completes no
// earlier than k times the service time the host's disk took for it, so in
// the node's virtual time it lasts what the target disk would.
//
// In a nutshell: blkio throttles scale a node's disk rates by k, but the
// device's own service time passes in real time, so a dilated node sees a
// read that takes s real seconds last s/k. A node with the model has each
// of its writable directories covered, inside its own mount namespace, by
// a FUSE file system that passes every operation through to the directory
// underneath (go-fuse's loopback, reached through a descriptor its init
// opened before mounting over it). The server is this package's role
// (Role, registered by package diskmodel/server, which holds the FUSE
// server and is linked into cmd/vmux), started by the node's init with the node's confinement (its
// cgroup, so its CPU is the node's; its capabilities and seccomp filter;
// its pid namespace). For reads, writes and fsyncs it measures the backing
// call's duration s and holds the reply until k x s after the call began
// (Model.Hold; a short nanosleep with the thread's timer slack at 1 ns,
// then a bounded spin to the deadline, Waiter). Files opened O_DIRECT are
// opened O_DIRECT underneath and served with FOPEN_DIRECT_IO (no page
// cache on either side); other files keep the kernel's page cache on the
// FUSE side, so a cached read never reaches the server (no service, no
// hold: the target's cache hit), and a miss is timed as the backing read
// (the device, or the backing file system's page cache).
//
// Nothing is mounted on the host: the mount is in the node's mount
// namespace and the server in its pid namespace, so both end with the
// node (vmux net down, the daemon killed, the node's init killed): the
// kernel kills the server with the namespace, the FUSE connection is
// aborted when its last descriptor closes, and the mount goes with the
// namespace. If the server alone dies, I/O in the directory fails with
// ENOTCONN instead of hanging (init keeps no descriptor of the connection).
package diskmodel
