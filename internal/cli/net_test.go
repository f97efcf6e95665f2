package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmux/vmux/diecast/netd"
	"github.com/vmux/vmux/internal/testutil"
)

// TestNetDownUnknown: net down of a name that is not up exits non-zero
// (it said "down in 0.00s" and exited 0), unless --ignore-not-found.
func TestNetDownUnknown(t *testing.T) {
	testutil.MustRoot(t)
	name := fmt.Sprintf("nosuch%d", os.Getpid()%100000)
	if _, _, err := memRun(t, context.Background(), "net", "down", name); !errors.Is(err, netd.ErrNotFound) {
		t.Errorf("net down %s: %v, want ErrNotFound", name, err)
	}
	out, _, err := memRun(t, context.Background(), "net", "down", "--ignore-not-found", "--json", name)
	if err != nil {
		t.Fatalf("net down --ignore-not-found: %v", err)
	}
	var d []netDownJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d) != 1 || d[0].Found || d[0].Name != name {
		t.Errorf("net down --json: %v %q", err, out)
	}
}

// TestNetUpDownJSON: net up and net down report as JSON.
func TestNetUpDownJSON(t *testing.T) {
	testutil.MustRoot(t)
	name := fmt.Sprintf("cljson%d", os.Getpid()%100000)
	p := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(p, []byte("name: "+name+"\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\n"), 0o600)
	out, _, err := memRun(t, context.Background(), "net", "up", "--json", p)
	t.Cleanup(func() { netd.Down(name, 0) })
	if err != nil {
		t.Fatal(err)
	}
	var u struct {
		Name    string  `json:"name"`
		Seconds float64 `json:"up_seconds"`
		Nodes   []struct {
			Name  string `json:"name"`
			Alive bool   `json:"alive"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.Name != name || len(u.Nodes) != 2 || !u.Nodes[0].Alive || u.Seconds <= 0 {
		t.Fatalf("net up --json (%v): %s", err, out)
	}
	out, _, err = memRun(t, context.Background(), "net", "down", "--json", name)
	var d []netDownJSON
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || len(d) != 1 || !d[0].Found {
		t.Fatalf("net down --json (%v): %s", err, out)
	}
}

// TestExecMissingCommand: vmux exec of a command that does not exist in the
// node exits 127, of one that cannot be executed 126, as a shell does (it
// exited 1).
func TestExecMissingCommand(t *testing.T) {
	testutil.MustRoot(t)
	name := fmt.Sprintf("clexec%d", os.Getpid()%100000)
	p := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(p, []byte("name: "+name+"\nnodes: {a: {}, b: {}}\nlinks: [{ends: [a, b]}]\n"), 0o600)
	if _, err := netd.Up(p, netd.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netd.Down(name, 3*time.Second) })
	for _, tc := range []struct {
		argv []string
		code int
	}{
		{[]string{"vmux-no-such-command"}, 127},
		{[]string{"/no/such/program"}, 127},
		{[]string{"/etc/passwd"}, 126},
		{[]string{"/etc"}, 126},
		{[]string{"sh", "-c", "exit 3"}, 3},
	} {
		_, _, err := memRun(t, context.Background(), append([]string{"exec", "--net", name, "a", "--"}, tc.argv...)...)
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != tc.code {
			t.Errorf("vmux exec %v: %v, want exit status %d", tc.argv, err, tc.code)
		}
	}
}
