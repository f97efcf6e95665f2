// Package testutil holds vmux's test prerequisites and leak checks.
//
// Prerequisite checks (MustRoot, MustHaveCommand) skip with the reason when
// run by hand, but fail under CI (CI=true), which runs as root on the target
// kernel: there a silently skipped root test would hide bugs. Leak checks
// (CheckFDs, the network leak checks) fail a test that leaves descriptors,
// namespaces, interfaces, cgroups or processes behind.
package testutil
