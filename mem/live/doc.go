// Package live is the live Difference Engine: it frees the memory of
// running processes (QEMU and other VMMs included: their guest RAM is
// process memory) by taking their cold pages out, storing each as
// shared, patched or compressed, and rebuilding it exactly when the
// process touches it again.
//
// In a nutshell:
//
//   - Attach: a userfaultfd is created inside the target by an injected
//     syscall (rt/ptrace) and copied out with pidfd_getfd; the engine
//     also maps a staging area and a control page in the target, and
//     starts an agent thread there (rt/ptrace.Agent) that runs the
//     engine's moves and frees without further ptrace stops. The target's
//     private anonymous memory is registered MISSING and async
//     write-protect.
//   - Aging (aging.go): every interval PAGEMAP_SCAN reports the pages
//     written since the last look and write-protects them again; a page
//     unwritten for the cold threshold is a candidate. Reads are sampled
//     by evicting: a page that comes back soon is hot, and a per-process
//     promotion-rate controller moves the threshold (as far memory does).
//   - Evict (evict.go): candidates are read, stored in the Pool (share
//     first, then patch against a similar stored page, then compress; a
//     page that would only be kept raw stays), moved out atomically with
//     UFFDIO_MOVE into the staging area, checked, journaled, and the
//     staging area is dropped: the process's RSS really falls.
//   - Serve (serve.go): a MISSING fault is rebuilt from the Pool with
//     UFFDIO_COPY (write-protected, so the clock sees the next write);
//     REMOVE/UNMAP/REMAP/FORK events and EAGAIN are followed as the
//     Firecracker and e2b handlers do. A write to a rebuilt page changes
//     that process alone: every process gets its own copy.
//   - Nothing lost: payloads live in a tmpfs file and the journal under
//     /run/vmux/live; the uffd stays open in the target, so if the engine
//     is killed the target's faults wait instead of reading zeros, and
//     Recover replays the journal, takes the uffd again from the target
//     and serves the pages again. Stop gives every page back.
//   - The engine runs as a daemon (reexec role EngineRole) behind a
//     control socket in its state directory (SO_PEERCRED: root and the
//     engine's own user only; requests bounded).
//
// Trust domains: pages are shared and used as references only within a
// sharing group (a domain), unless Config.Mem.CrossDomain.
//
// Lock order: Engine.mu, target.mu, the Pool's mutex, the Journal's mutex.
// The aging clock, eviction and injection run on one locked OS thread (the
// injector thread); each target's faults and events on its serve loop.
// docs/design/live.md has the design and the alternatives rejected;
// docs/benchmarks.md ("Difference Engine: live") the figures.
package live
