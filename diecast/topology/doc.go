// Package topology is the experiment spec of vmux's DieCast mode, and its
// compiled runtime form. It is pure: no syscalls, no I/O beyond reading a
// file, tested without root.
//
// In a nutshell: a YAML Spec names the experiment, its time-dilation factor
// (tdf), its nodes (or groups of nodes with a count: web: {count: 8} gives
// web1..web8) with their CPU share, memory and disk limits, forwarding-only
// switches, and links between them with bandwidth, latency, jitter, loss and
// a drop-tail queue, optionally different per direction. Parse decodes it
// strictly (unknown keys are errors) with typed units ("100Mbit", "50MB/s",
// "5ms", "0.1%", "64KiB", "256Mi"). Compile validates the whole spec,
// reporting every problem with the path of the key at fault; it expands
// groups, assigns IPv4 addresses from the subnet (default 10.<120-219>.0.0/16
// derived from the name), turns each link into two directed links whose
// Real parameters are scaled by the TDF k (bandwidth / k, latency and
// jitter x k, queue and loss unchanged: the DieCast rule), and computes
// shortest-path routes in hops over switches (nodes never forward; ties
// break on names, so routes are the same on every run).
//
// The Network it returns is immutable; the node sandboxes and the netem
// link emulator are built from it.
package topology
