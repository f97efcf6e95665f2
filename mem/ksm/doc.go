// Package ksm drives the kernel's own page merger, KSM, as the baseline the
// Difference Engine is measured against.
//
// In a nutshell: processes are marked mergeable with prctl(PR_SET_MEMORY_MERGE)
// (a launcher sets it, then execs the real program; whether the mark survives
// execve depends on the kernel, so it is checked in /proc/PID/ksm_stat); the
// scanner is switched on with fast settings (pages_to_scan, sleep_millisecs
// in /sys/kernel/mm/ksm) after saving every value it changes; Converge waits
// until full scans stop changing pages_sharing; Restore puts every saved value
// back. Callers defer Restore so that every exit path, Ctrl-C included,
// leaves KSM as it was (by default run=0). For the exit paths no defer runs
// on (SIGKILL, OOM kill), Tune journals each old value in /run/vmux before
// changing it, and the next Tune (or Recover) replays a dead owner's journal
// first; while the owner lives, Tune refuses with ErrBusy.
package ksm
