package tcpfreeze

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// netConn is a loopback TCP pair whose sender has unsent data (the
// receiver reads nothing and its window closed), so that only its
// loopback peer keeps it from being held.
type netConn struct {
	ln   net.Listener
	c, s net.Conn
}

func loopbackPair() (*netConn, error) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		ln.Close()
		return nil, err
	}
	s, err := ln.AcceptTCP()
	if err != nil {
		ln.Close()
		c.Close()
		return nil, err
	}
	s.SetReadBuffer(4096)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	b := make([]byte, 1<<20)
	for {
		if _, err := c.Write(b); err != nil {
			break
		}
	}
	return &netConn{ln: ln, c: c, s: s}, nil
}

func (n *netConn) close() { n.c.Close(); n.s.Close(); n.ln.Close() }

// netTCP is a connection whose lock can be tested.
type netTCP struct{ c *net.TCPConn }

// infoBlocks reports whether getsockopt(TCP_INFO), which takes the
// socket lock, is still blocked after 50 ms (the call finishes in the
// background once the lock is free).
func (n *netTCP) infoBlocks(t *testing.T) bool {
	t.Helper()
	rc, err := n.c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		rc.Control(func(fd uintptr) { linux.TCPInfoBlocks(int(fd)) })
		close(done)
	}()
	select {
	case <-done:
		return false
	case <-time.After(50 * time.Millisecond):
		return true
	}
}
