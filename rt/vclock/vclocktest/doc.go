// Package vclocktest is one behavioural test suite for anything that runs
// a virtual clock: the in-process vclock.Clock over a Fake source, and the
// real shared clock page read through the replacement vDSO (dilate/vdso).
// The same assertions run over both, so the fake cannot drift from the
// real thing.
//
// In a nutshell: Run drives a Controller through rate changes, a pause and
// a resume, and bounds every virtual interval by real readings taken just
// outside and just inside the two reads that delimit it: exact bounds for
// a fake, rigorous ones with no tolerance for a real clock on a noisy
// machine.
package vclocktest
