package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

// TestNoPrivilegeThroughDilation: a dilated tree never gains a privilege.
// vmux run refuses, up front and with the reason, a setuid program or one
// whose file capabilities exceed the caller's (issue 10: the check covered
// only setuid on the top-level command); a program the tree execs later
// runs with neither its setuid bit nor its file capabilities (the tree is
// under no_new_privs and ptrace), so an unprivileged user cannot use a
// dilated run to escalate. Root keeps what it has: ping (cap_net_raw) runs.
func TestNoPrivilegeThroughDilation(t *testing.T) {
	testutil.MustRoot(t)
	setcap := testutil.MustHaveCommand(t, "setcap")
	setpriv := testutil.MustHaveCommand(t, "setpriv")
	ping := testutil.MustHaveCommand(t, "ping")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is 0700: nobody must reach the programs
	cp := func(src, dst string, mode os.FileMode) string {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, dst)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vmux := cp(buildVmux(t), "vmux", 0o755)
	suid := cp("/usr/bin/id", "suid-id", 0o755|os.ModeSetuid) // setuid root
	capcat := cp("/usr/bin/cat", "capcat", 0o755)
	if out, err := exec.Command(setcap, "cap_dac_read_search+ep", capcat).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v %s", err, out)
	}
	asNobody := func(args ...string) *exec.Cmd {
		c := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--"}, args...)...)
		c.Dir = dir
		return c
	}
	// Without vmux, both programs give nobody a privilege.
	if out, _ := asNobody(suid, "-u").Output(); strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("setup: the setuid copy of id gives euid %q, not 0", out)
	}
	if err := asNobody(capcat, "/etc/shadow").Run(); err != nil {
		t.Fatalf("setup: the capable cat cannot read /etc/shadow: %v", err)
	}

	for _, tc := range []struct {
		name string
		cmd  *exec.Cmd
		msg  string
	}{
		{"setuid top-level", asNobody(vmux, "run", "--tdf", "2", "--", suid, "-u"), "setuid"},
		{"file caps top-level", asNobody(vmux, "run", "--tdf", "2", "--", capcat, "/etc/shadow"), "file capabilities"},
	} {
		var stderr strings.Builder
		tc.cmd.Stderr = &stderr
		out, err := tc.cmd.Output()
		if code := exitCode(err); code != 1 || !strings.Contains(stderr.String(), tc.msg) || len(out) > 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q: want a refusal mentioning %q", tc.name, code, out, stderr.String(), tc.msg)
		}
	}
	// Exec'd later by the dilated tree: run, but unprivileged.
	c := asNobody(vmux, "run", "--tdf", "2", "--", "/bin/sh", "-c", suid+" -u; "+capcat+" /etc/shadow >/dev/null && echo READ")
	out, _ := c.Output()
	if got := strings.Fields(string(out)); len(got) != 1 || got[0] != "65534" {
		t.Errorf("nobody's dilated tree: id -u and cat /etc/shadow printed %q, want only 65534 (no setuid, no capability)", out)
	}
	// Root loses nothing: a file-capability program it may run anyway.
	if out, err := exec.Command(vmux, "run", "--tdf", "2", "--", ping, "-c1", "-W5", "127.0.0.1").CombinedOutput(); err != nil {
		t.Errorf("root's vmux run ping: %v\n%s", err, out)
	}
	if out, err := exec.Command(vmux, "run", "--tdf", "2", "--", capcat, "/etc/hostname").CombinedOutput(); err != nil {
		t.Errorf("root's vmux run of a capable program: %v\n%s", err, out)
	}
}
