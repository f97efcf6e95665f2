package ksm

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/reexec"
)

// tunerRole tunes KSM (journal, pages_to_scan), says so, and waits to be
// killed without restoring.
const tunerRole = "ksm-test-tuner"

func init() {
	reexec.Register(tunerRole, func(args []string) int {
		Journal = args[0]
		if _, err := Tune(map[string]string{"pages_to_scan": args[1]}); err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("tuned")
		select {}
	})
}

func TestMain(m *testing.M) {
	reexec.Init()
	os.Exit(m.Run())
}

// TestJournalUndoesKilledTune kills a process that tuned KSM and checks that
// the next Tune first puts the dead process's changes back.
func TestJournalUndoesKilledTune(t *testing.T) {
	testutil.MustRoot(t)
	if _, err := os.Stat(Dir); err != nil {
		t.Fatalf("no KSM: %v", err)
	}
	orig := read(t, "pages_to_scan")
	j := filepath.Join(t.TempDir(), "ksm.json")
	defer func(old string) { Journal = old }(Journal)
	Journal = j
	t.Cleanup(func() { os.WriteFile(filepath.Join(Dir, "pages_to_scan"), []byte(orig), 0) })

	cmd := reexec.Command("", tunerRole, j, "4321")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "tuned\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	// While the owner lives, another Tune must refuse rather than undo it.
	if _, err := Tune(map[string]string{"pages_to_scan": "77"}); !errors.Is(err, ErrBusy) {
		t.Errorf("Tune while another vmux holds KSM: %v, want ErrBusy", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := read(t, "pages_to_scan"); got != "4321" {
		t.Fatalf("pages_to_scan %s after the kill, want the helper's 4321", got)
	}
	if err := Recover(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, "pages_to_scan"); got != orig {
		t.Fatalf("pages_to_scan %s after Recover, want the original %s", got, orig)
	}
	if _, err := os.Stat(j); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal left after recovery: %v", err)
	}
}
