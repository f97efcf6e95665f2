package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmux/vmux/rt/reexec"
)

const writerRole = "cli-test-shm-writer"

// The writer maps a file shared, as QEMU maps a memory-backend-file with
// share=on, and keeps rewriting pages of it until killed.
func init() {
	reexec.Register(writerRole, func(args []string) int {
		f, err := os.OpenFile(args[0], os.O_RDWR, 0)
		if err != nil {
			return 1
		}
		st, _ := f.Stat()
		m, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			return 1
		}
		os.Stdout.WriteString("ready\n")
		r := rand.New(rand.NewPCG(1, 1))
		for {
			p := r.IntN(len(m) / 4096)
			for i := 0; i < 4096; i += 64 {
				m[p*4096+i] = byte(r.Uint32())
			}
		}
	})
}

// TestAnalyzeChangingSource: a file that a running process keeps writing
// (a running guest's memory) is analyzed as read, and the report says how
// many pages changed, instead of failing with "source changed".
func TestAnalyzeChangingSource(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "guest-ram")
	img := make([]byte, 16<<20)
	r := rand.New(rand.NewPCG(2, 2))
	for p := 0; p < len(img)/4096; p++ {
		if p%3 == 0 {
			copy(img[p*4096:], strings.Repeat("same page ", 410))
		} else if p%3 == 1 {
			for i := 0; i < 4096; i += 8 {
				img[p*4096+i] = byte(r.Uint32())
			}
		}
	}
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := reexec.Command("", writerRole, path)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if l, _ := bufio.NewReader(out).ReadString('\n'); l != "ready\n" {
		t.Fatalf("writer: %q", l)
	}
	stdout, _, err := memRun(t, context.Background(), "mem", "analyze", "--json", path)
	if err != nil {
		t.Fatalf("analyze of a changing file failed: %v", err)
	}
	var doc struct {
		Sources []struct {
			ChangedPages int64 `json:"changed_pages"`
			TotalBytes   int64 `json:"total_bytes"`
		} `json:"sources"`
		SavedBytes int64 `json:"saved_bytes"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Sources) != 1 || doc.Sources[0].ChangedPages == 0 {
		t.Fatalf("changed pages not reported: %+v", doc.Sources)
	}
	if doc.Sources[0].TotalBytes != int64(len(img)) || doc.SavedBytes <= 0 {
		t.Fatalf("analysis: %+v saved %d", doc.Sources, doc.SavedBytes)
	}
	t.Logf("%d of %d pages changed during the scan", doc.Sources[0].ChangedPages, len(img)/4096)
	table, _, err := memRun(t, context.Background(), "mem", "analyze", path)
	if err != nil || !strings.Contains(table, "Changed while read:") {
		t.Fatalf("table: %v\n%s", err, table)
	}
}
