// Package tcprto scales the initial retransmission timeout of a node's TCP
// sockets by the experiment's TDF.
//
// Under dilation the kernel's TCP stack runs in real time: a connection's
// initial RTO (TCP_TIMEOUT_INIT, 1 s, the timeout of a SYN or SYN-ACK and
// of data sent before the first RTT sample) looks k times shorter from
// inside a node at TDF k. No sysctl or route option sets it; a BPF
// sock_ops program answering BPF_SOCK_OPS_TIMEOUT_INIT does, for every
// socket of the cgroup it is attached to. A Scaler is one such program with
// a one-entry array map holding the timeout in jiffies: Attach puts it on
// each node's cgroup v2 directory (node.BPFCgroup), Set changes the
// timeout for every node at once when k changes, Close detaches it (the
// kernel detaches it too if the owning process dies: the attachments are
// BPF links held by descriptors, nothing is pinned).
//
// Only the initial RTO is reachable this way on this kernel: the minimum
// RTO and delayed-ACK bounds that bpf_setsockopt offers (TCP_BPF_RTO_MIN,
// TCP_BPF_DELACK_MAX) may only be lowered below their defaults, not
// raised, and the SYN-retransmitted fallback RTO (3 s) is fixed. Root
// (CAP_BPF and CAP_NET_ADMIN) is needed.
package tcprto
