package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"syscall"
)

// Exit statuses a shell reports for a command it could not start.
const (
	StatusNotFound      = 127 // no such command
	StatusNotExecutable = 126 // found, but cannot be executed
)

// launchStatus classifies why a launch failed, the way a shell does: 127
// for a command that does not exist, 126 for one that cannot be executed,
// 0 for any other failure (the node's, not the command's).
func launchStatus(err error) int {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return StatusNotFound
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EISDIR):
		return StatusNotExecutable
	}
	return 0
}

// launchError is the client's error for a reply that says the command
// could not be started.
func launchError(msg string, status int) error {
	switch status {
	case StatusNotFound:
		return fmt.Errorf("%w: %s", ErrCommandNotFound, msg)
	case StatusNotExecutable:
		return fmt.Errorf("%w: %s", ErrNotExecutable, msg)
	}
	return fmt.Errorf("%s", msg)
}
