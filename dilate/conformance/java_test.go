package conformance

import (
	"os/exec"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

// javaFlags: interpret only. JIT compiler threads compete for the two
// cores at unpredictable moments, and at k < 1 their CPU time shows up
// magnified in virtual time; the steps are waits, not computation.
const javaFlags = "-Xint"

func TestJava(t *testing.T) {
	javac := testutil.MustHaveCommand(t, "javac")
	java := testutil.MustHaveCommand(t, "java")
	dir := t.TempDir()
	// Inline string concatenation: the default (invokedynamic) bootstraps
	// at the first E line, after the step's clock read, which would delay
	// that line by tens of ms of real time.
	if out, err := exec.Command(javac, "-XDstringConcat=inline", "-d", dir, "testdata/Conf.java").CombinedOutput(); err != nil {
		t.Fatalf("compiling Conf.java: %v\n%s", err, out)
	}
	for _, c := range tdfs {
		t.Run("tdf="+c.k, func(t *testing.T) {
			runConformance(t, c.k, c.d, 8, java, javaFlags, "-XX:+UseSerialGC", "-cp", dir, "Conf")
		})
	}
}
