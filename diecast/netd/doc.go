// Package netd is the experiment daemon of vmux net: it brings a compiled
// topology up as node sandboxes joined by the user-space link emulator,
// keeps it running, and tears it down, from its state on disk if need be.
//
// In a nutshell: Up (the `vmux net up` side) validates the spec, copies it
// to /run/vmux/<name>/, and re-executes vmux as the daemon (hidden
// subcommand __net-daemon): its own session (so a terminal's hangup does
// not reach it), no parent-death signal (vmux net up exits at once), output
// to /run/vmux/<name>/log, and a pipe on fd 3 on which it reports "ok" or
// why bring-up failed; Up waits for that line. The daemon records its pid
// in state.json first, then starts the nodes (node.Start, 8 at a time:
// each is a fork/exec plus cgroup and netlink writes, more in parallel only
// contend on 2 cores), and for each opens a TUN inside the node's netns
// (a locked OS thread setns'd into it: the interface lives there, the fd
// stays with the daemon) and gives it the node's address and lo with
// netlink through a handle bound to that netns. State is rewritten
// atomically after every node, so a crash half-way is still cleanable.
// Then netem.New over the TUNs and Run. Every node shares one
// /etc/hosts (bind-mounted by its init), so names resolve everywhere.
//
// With UpOptions.Dilate (vmux net up --dilate) the experiment has ONE
// clock and ONE supervisor (dilation.go): the daemon owns the clock and
// serves `vmux clock` for it under the experiment's name, traces every
// node process with dilate.Serve (the trace thread lives in the daemon;
// wait4 with __WNOTHREAD leaves the node inits to their own waiters), and
// each node's init has every program adopted before it runs over a
// private connection (node.SupervisedLauncher). The scaled links
// (bandwidth / k, latency x k) look like the spec again from inside.
//
// The daemon runs at nice -10 (its process group only; node inits reset
// theirs): the emulator stands for the network hardware and must not be
// starved by host load, or goodput and RTTs drift from the spec.
//
// Down is idempotent and needs nothing but the state file: SIGTERM to the
// daemon (which stops the emulator and the nodes itself), then, whether
// the daemon was alive or not, kill every recorded init (pid + start time,
// so a reused pid is never hit; the kernel kills the rest of each pid
// namespace), kill what is left in the cgroups, wait until they are empty
// and remove them, also any cgroup named vmux/<name>/ the state missed,
// and the run directory. Network namespaces and TUN interfaces go with
// their last process and fd.
package netd
