//go:build linux

package linux

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenPTY allocates a pseudo-terminal pair from /dev/ptmx (as seen by the
// calling process's mount namespace) and returns its master and slave.
func OpenPTY() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: "/dev/ptmx", Err: err}
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, syscallErr("ioctl TIOCSPTLCK", err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		unix.Close(m)
		return nil, nil, syscallErr("ioctl TIOCGPTN", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	s, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(m)
		return nil, nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(m), "/dev/ptmx"), os.NewFile(uintptr(s), name), nil
}

// Winsize is a terminal's size in characters.
type Winsize struct{ Rows, Cols uint16 }

// GetWinsize reads the size of the terminal open as f.
func GetWinsize(f *os.File) (Winsize, error) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return Winsize{}, syscallErr("ioctl TIOCGWINSZ", err)
	}
	return Winsize{Rows: ws.Row, Cols: ws.Col}, nil
}

// SetWinsize sets the size of the terminal open as f (a pty master: the
// process on the slave gets SIGWINCH).
func SetWinsize(f *os.File, w Winsize) error {
	return syscallErr("ioctl TIOCSWINSZ", unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: w.Rows, Col: w.Cols}))
}
