package tcpfreeze

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
	"golang.org/x/sys/unix"
)

// TestFreezeHolderKilled: when the process holding the locks dies (kill
// -9: the daemon crashing), the kernel ends its sleeping setsockopts and
// the sockets are unlocked at once; the holder leaves no process behind
// and the connection carries data again.
func TestFreezeHolderKilled(t *testing.T) {
	testutil.MustRoot(t)
	p := newPair(t, 10*time.Millisecond)
	ln := p.listen()
	c, s := p.dial(ln)
	drain(s)
	stop := make(chan struct{})
	wg := stream(c, 1024, time.Millisecond, stop)
	defer func() { close(stop); c.Close(); wg.Wait() }()
	time.Sleep(200 * time.Millisecond)
	p.pause()
	defer p.resume()
	cmd := reexec.Command("", holderRole, p.ns[0], strconv.Itoa(os.Getpid()))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "held 1" {
		t.Fatalf("holder: %q", line)
	}
	conn := &netTCP{c}
	if !conn.infoBlocks(t) {
		t.Fatal("the holder's socket is not locked")
	}
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("the holder exited 0: it was not killed")
	}
	for conn.infoBlocks(t) {
		if time.Since(killed) > 2*time.Second {
			t.Fatal("still locked 2 s after the holder died")
		}
	}
	t.Logf("unlocked %v after kill -9", time.Since(killed))
	if err := syscall.Kill(cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("holder %d still there after kill -9 and wait: %v", cmd.Process.Pid, err)
	}
	// The connection works: once the forwarder runs again, what the
	// sender writes is acknowledged (its send queue drains).
	p.resume()
	deadline := time.Now().Add(2 * time.Second)
	for {
		info, err := tcpInfo(c)
		if err != nil {
			t.Fatal(err)
		}
		if info.Unacked < 64 && info.Retransmits == 0 && info.State == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection not flowing 2 s after the resume: %+v", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tcpInfo reads c's tcp_info.
func tcpInfo(c *net.TCPConn) (*unix.TCPInfo, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return nil, err
	}
	return info, ierr
}
