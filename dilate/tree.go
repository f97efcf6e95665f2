package dilate

import (
	"os"

	"github.com/vmux/vmux/rt/vclock"
)

// tree is one process tree the supervisor traces from its launcher on: a
// `vmux run`'s command, or one process a node's init started (Adopt). It
// carries what differs between the trees of one experiment (the node's CPU
// share) and the launcher's seccomp listener, through which the clock page
// is handed into each of its programs at exec (vdso.go).
type tree struct {
	root  int          // the launcher's pid
	share vclock.Share // zero: the clock's own
	pidfd *os.File     // the launcher's, to take its listener
	// listener is the seccomp filter's listener, taken from the launcher
	// at its handshake (nil before).
	listener *os.File
	// handshook: the launcher made its handshake (an exec of the root
	// before it is the launcher's own, seen when seizing raced with it).
	handshook bool
	procs     int // live processes; the tree's files close with the last
}

func newTree(root int, share vclock.Share, pidfd *os.File) *tree {
	return &tree{root: root, share: share, pidfd: pidfd, procs: 1}
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
