package dilate

import (
	"os"
	"sync/atomic"

	"github.com/vmux/vmux/rt/vclock"
)

// tree is one process tree the supervisor traces from its launcher on: a
// `vmux run`'s command, or one process a node's init started (Adopt). It
// carries what differs between the trees of one experiment (the node's CPU
// share) and the launcher's seccomp listener, through which the clock page
// is handed into each of its programs at exec (vdso.go).
type tree struct {
	root   int      // the launcher's pid
	domain *Domain  // its CPU share; nil: the clock's own
	pidfd  *os.File // the launcher's, to take its listener
	// listener is the seccomp filter's listener, taken from the launcher
	// at its handshake (nil before).
	listener *os.File
	// handshook: the launcher made its handshake (an exec of the root
	// before it is the launcher's own, seen when seizing raced with it).
	handshook bool
	procs     int // live processes; the tree's files close with the last
}

func newTree(root int, d *Domain, pidfd *os.File) *tree {
	return &tree{root: root, domain: d, pidfd: pidfd, procs: 1}
}

// Domain is a CPU share that several adopted trees follow, and that may
// change while they run: an experiment node's real share of a core, c/k,
// which moves with the experiment's factor k. The zero Domain is the
// clock's own share. Methods are safe for concurrent use.
type Domain struct{ v atomic.Pointer[vclock.Share] }

// NewDomain returns a domain with share (zero: the clock's own).
func NewDomain(share vclock.Share) (*Domain, error) {
	d := &Domain{}
	return d, d.SetShare(share)
}

// SetShare changes the domain's share (zero: the clock's own); CPU-time
// readings of its processes stay continuous (re-based at their next read).
func (d *Domain) SetShare(share vclock.Share) error {
	if share != (vclock.Share{}) {
		if err := share.Validate(); err != nil {
			return err
		}
	}
	d.v.Store(&share)
	return nil
}

// Share is the domain's share, zero for the clock's own.
func (d *Domain) Share() vclock.Share {
	if p := d.v.Load(); p != nil {
		return *p
	}
	return vclock.Share{}
}

// exited accounts for one process of the tree leaving.
func (tr *tree) exited() {
	tr.procs--
	if tr.procs > 0 {
		return
	}
	if tr.listener != nil {
		tr.listener.Close()
		tr.listener = nil
	}
	if tr.pidfd != nil {
		tr.pidfd.Close()
		tr.pidfd = nil
	}
}

// close releases the tree's files whatever is left of it (teardown).
func (tr *tree) close() {
	tr.procs = 1
	tr.exited()
}
