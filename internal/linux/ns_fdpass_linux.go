//go:build linux

package linux

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// SendWithFds writes msg on c with files attached as SCM_RIGHTS.
func SendWithFds(c *net.UnixConn, msg []byte, files ...*os.File) error {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.WriteMsgUnix(msg, oob, nil); err != nil {
		return fmt.Errorf("send fds: %w", err)
	}
	return nil
}

// RecvWithFds reads one message of at most len(buf) bytes from c and returns
// its length and the files passed along with it (close them).
func RecvWithFds(c *net.UnixConn, buf []byte) (int, []*os.File, error) {
	oob := make([]byte, unix.CmsgSpace(16*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return 0, nil, fmt.Errorf("recv fds: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return n, nil, syscallErr("parse control message", err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("passed-fd-%d", fd)))
		}
	}
	return n, files, nil
}
