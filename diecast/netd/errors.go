package netd

import (
	"errors"
	"fmt"
	"os"
)

var (
	// ErrNotFound: no experiment of that name is up.
	ErrNotFound = errors.New("no such experiment (see vmux net status)")
	// ErrAlreadyUp: an experiment of that name is running.
	ErrAlreadyUp = errors.New("experiment already up (vmux net down NAME first)")
	// ErrAmbiguous: several experiments are up and none was named.
	ErrAmbiguous = errors.New("several experiments are up: name one with --net")
	// ErrNoNode: the experiment has no node of that name.
	ErrNoNode = errors.New("no such node in the experiment")
	// ErrNotUp: the daemon reported ready but the experiment is not (the
	// daemon or a node's init died, a node's socket does not answer).
	ErrNotUp = errors.New("experiment is not up")
	// ErrForeignPidNS: the experiment's state was written in another pid
	// namespace (vmux net run inside a privileged node): its pids do not
	// name its processes here.
	ErrForeignPidNS = errors.New("experiment runs in another pid namespace: use vmux net from the host, not from inside a node")
	// ErrBadOption: an UpOptions field is unusable.
	ErrBadOption = errors.New("invalid bring-up option")
	// ErrDaemon: the experiment daemon failed to bring the experiment up.
	ErrDaemon = errors.New("experiment daemon failed")
)

// DaemonError carries the daemon's own report and where its log is.
type DaemonError struct {
	Name, Log, Msg string
}

func (e *DaemonError) Error() string {
	if _, err := os.Stat(e.Log); err != nil {
		return fmt.Sprintf("bring up %s: %s", e.Name, e.Msg) // torn down with its run dir
	}
	return fmt.Sprintf("bring up %s: %s (log: %s)", e.Name, e.Msg, e.Log)
}
func (e *DaemonError) Unwrap() error { return ErrDaemon }
