// Package clock is the one virtual clock of a dilated run or of a whole
// experiment: a page of vclock.Params in a sealed memfd, written by one
// owner and read by everyone who needs virtual time (the replacement vDSO
// in every tracee, the dilation supervisor, the link emulator), and a
// control socket through which `vmux clock` changes it.
//
// In a nutshell:
//
//   - Owner. New creates a one-page memfd, maps it read-write, stores the
//     clock's first parameters and then seals it with F_SEAL_FUTURE_WRITE
//     (and against resizing): from then on no process can write it, by
//     write(2) or by a new shared writable mapping, through any descriptor,
//     even one reopened read-write through /proc (a dilated program cannot
//     speed up its own clock). Only the owner's existing mapping writes.
//     The owner serialises its writers with a mutex and publishes every
//     change inside a seqlock (seq odd while writing), with the real
//     readings taken inside it, so virtual time never jumps or steps back.
//   - Readers. ReadOnly hands out a read-only descriptor of the page
//     (passed to supervisors and into tracees); Open maps one as a View.
//     A View's Load retries while the sequence is odd and gives up with
//     ErrWriterStuck when it stays odd (the owner died inside a write; the
//     run is then over). Seq lets a reader cache parameters and reload only
//     when they changed.
//   - Control. Serve answers requests on an abstract unix socket named
//     "vmux-clock-NAME" (abstract: nothing is left on disk whatever kills
//     the owner; per network namespace: a node's processes cannot reach
//     the host's clocks). Both ends check SO_PEERCRED: the server serves
//     root only and refuses any process traced by a supervisor of this
//     clock (its own readings would be virtual); the client accepts a
//     root server only. List finds the live clocks in /proc/net/unix.
//
// The page layout is rt/vclock's (page.go); the replacement vDSO
// (dilate/vdso/csrc/vdso.c) reads the same offsets.
package clock
