package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

func TestStaticGo(t *testing.T) {
	gobin := testutil.MustHaveCommand(t, "go")
	bin := filepath.Join(t.TempDir(), "confgo")
	cmd := exec.Command(gobin, "build", "-o", bin, "./testdata/confgo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building confgo: %v\n%s", err, out)
	}
	for _, c := range tdfs {
		t.Run("tdf="+c.k, func(t *testing.T) { runConformance(t, c.k, c.d, 9, bin) })
	}
}
