package conformance

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

func TestPython(t *testing.T) {
	py := testutil.MustHaveCommand(t, "python3")
	// Resolve wrappers (pyenv shims are shell scripts that fork a dozen
	// processes) to the interpreter itself, outside the dilated run.
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatalf("finding the python3 interpreter: %v", err)
	}
	interp := strings.TrimSpace(string(out))
	for _, c := range tdfs {
		t.Run("tdf="+c.k, func(t *testing.T) { runConformance(t, c.k, c.d, 9, interp, "testdata/conf.py") })
	}
}
