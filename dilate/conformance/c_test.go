package conformance

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

func TestGlibcC(t *testing.T) {
	gcc := testutil.MustHaveCommand(t, "gcc")
	bin := filepath.Join(t.TempDir(), "conf")
	out, err := exec.Command(gcc, "-O2", "-o", bin, "testdata/conf.c", "-lpthread").CombinedOutput()
	if err != nil {
		t.Fatalf("building conf.c: %v\n%s", err, out)
	}
	for _, c := range tdfs {
		t.Run("tdf="+c.k, func(t *testing.T) { runConformance(t, c.k, c.d, 15, bin) })
	}
}
