package node

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestAllowPeer(t *testing.T) {
	for _, c := range []struct {
		p  linux.Ucred
		ok bool
	}{
		{linux.Ucred{Uid: 0, Pid: 0}, true},             // root outside the node
		{linux.Ucred{Uid: 65534, Pid: 0}, false},        // another user
		{linux.Ucred{Uid: 0, Pid: 7}, false},            // a process of the node
		{linux.Ucred{Uid: 1000, Gid: 0, Pid: 0}, false}, // group root is not root
	} {
		err := allowPeer(c.p)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrDenied)) {
			t.Errorf("allowPeer(%+v) = %v, want ok=%v", c.p, err, c.ok)
		}
	}
}

// The exec socket is 0600 whatever the umask: `(umask 000; vmux net up)`
// gave srwxrwxrwx.
func TestExecSocketModeIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	n, _ := startTestNode(t, Limits{})
	st, err := os.Lstat(n.cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("exec socket mode %v under umask 000, want a 0600 socket", st.Mode())
	}
}

// Start refuses a socket directory others can enter or write.
func TestStartRefusesOpenSocketDir(t *testing.T) {
	testutil.MustRoot(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(Config{Experiment: "tsockdir", Name: "alpha", Socket: filepath.Join(dir, "alpha.sock")})
	if !errors.Is(err, ErrBadConfig) {
		t.Fatalf("Start with a 0755 socket dir: %v, want ErrBadConfig", err)
	}
	if left := testutil.CgroupDirsNamed("vmux/tsockdir"); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
}

// A user other than root who reaches the socket (here: its directory and
// the socket opened up, as a careless umask and directory did) is refused
// by init itself (SO_PEERCRED), and nothing runs. Before: `id` ran as uid 0.
func TestExecSocketRefusesNonRoot(t *testing.T) {
	n, _ := startTestNode(t, Limits{})
	dir := filepath.Dir(n.cfg.Socket)
	// Through the directory as it is (0700): the kernel refuses.
	if c, err := testutil.DialUnixAs(n.cfg.Socket, unix.SOCK_SEQPACKET, testutil.Nobody, testutil.Nobody); err == nil {
		c.Close()
		t.Error("uid 65534 connected through a 0700 directory")
	}
	// Open the socket directory and its ancestors up to t.TempDir's (0700).
	for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(filepath.Dir(dir))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(n.cfg.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	c, err := testutil.DialUnixAs(n.cfg.Socket, unix.SOCK_SEQPACKET, testutil.Nobody, testutil.Nobody)
	if err != nil {
		t.Fatalf("connect as nobody to an opened-up socket: %v", err)
	}
	defer c.Close()
	marker := filepath.Join(dir, "ran")
	req, _ := json.Marshal(execRequest{Argv: []string{"/bin/sh", "-c", "id -u > " + marker}, Env: []string{"PATH=/usr/bin:/bin"}})
	null, _ := os.Open(os.DevNull)
	defer null.Close()
	if err := linux.SendWithFds(c, req, null, null, null); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	k, files, err := linux.RecvWithFds(c, buf)
	closeAll(files)
	if err != nil {
		t.Fatalf("read init's reply: %v", err)
	}
	var r execReply
	if err := json.Unmarshal(buf[:k], &r); err != nil {
		t.Fatal(err)
	}
	if !r.Denied || r.Pid != 0 {
		t.Errorf("init's reply to uid 65534: %+v, want denied", r)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command of uid 65534 ran in the node")
	}
	// Root is still served.
	if out, _, st := run(t, n, "id", "-u"); out != "0\n" || st.Code != 0 {
		t.Errorf("root's exec after the refusal: %q %+v", out, st)
	}
}
