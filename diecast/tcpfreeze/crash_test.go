package tcpfreeze

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
)

// TestFreezeHolderKilled: when the process holding the locks dies (kill
// -9: the daemon crashing), the kernel ends its sleeping setsockopts and
// the sockets are unlocked at once.
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
	cmd.Process.Kill()
	cmd.Wait()
	for conn.infoBlocks(t) {
		if time.Since(killed) > 2*time.Second {
			t.Fatal("still locked 2 s after the holder died")
		}
	}
	t.Logf("unlocked %v after kill -9", time.Since(killed))
}
