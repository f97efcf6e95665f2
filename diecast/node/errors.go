package node

import (
	"errors"
	"fmt"
)

// Sentinel errors; wrap them, callers classify with errors.Is.
var (
	// ErrBadConfig: a node configuration is unusable (empty name, bad limit).
	ErrBadConfig = errors.New("invalid node configuration")
	// ErrInitFailed: the node's init did not report ready.
	ErrInitFailed = errors.New("node init failed")
	// ErrCgroupBusy: a cgroup still held processes after the kill timeout.
	ErrCgroupBusy = errors.New("cgroup still has processes")
	// ErrNoCgroupControllers: neither cgroup v1 controllers nor a v2
	// hierarchy with cpu, memory and io were found.
	ErrNoCgroupControllers = errors.New("no usable cgroup controllers (need v1 cpu/memory/blkio or v2 cpu/memory/io)")
	// ErrCommandNotFound: the command to exec does not exist in the node
	// (vmux exec exits 127, as a shell does).
	ErrCommandNotFound = errors.New("command not found")
	// ErrNotExecutable: the command exists but cannot be executed (vmux
	// exec exits 126).
	ErrNotExecutable = errors.New("command cannot be executed")
	// ErrDenied: a node's init refused an exec request from that peer
	// (not root, or a process of the node itself).
	ErrDenied = errors.New("exec request denied")
	// ErrNotInit: InitMain was called without the environment set by Start.
	ErrNotInit = errors.New("not started as a node init (missing " + InitEnv + ")")
)

// ExecError reports a command a node's init could not launch.
type ExecError struct {
	Node string
	Argv []string
	Err  error
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("exec %q in node %s: %v", e.Argv, e.Node, e.Err)
}
func (e *ExecError) Unwrap() error { return e.Err }
