package conformance

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/dilate"
	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/vclock"
)

// TestRateChangesUnderLoad runs the static Go and Java programs while the
// clock's factor flips every 30 ms: every kick interrupts their runtime's
// waits (futex, epoll, nanosleep) and re-arms them. The programs must
// finish normally with no failed check: no spurious EINTR, no hang, no
// crash. (Step durations are not checked: the rate keeps changing.)
func TestRateChangesUnderLoad(t *testing.T) {
	gocmd := testutil.MustHaveCommand(t, "go")
	javac := testutil.MustHaveCommand(t, "javac")
	java := testutil.MustHaveCommand(t, "java")
	dir := t.TempDir()
	gobin := filepath.Join(dir, "confgo")
	cmd := exec.Command(gocmd, "build", "-o", gobin, "./testdata/confgo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building confgo: %v\n%s", err, out)
	}
	if out, err := exec.Command(javac, "-XDstringConcat=inline", "-d", dir, "testdata/Conf.java").CombinedOutput(); err != nil {
		t.Fatalf("compiling Conf.java: %v\n%s", err, out)
	}
	d := "40000000" // 40 ms virtual steps: a run spans tens of changes
	for name, argv := range map[string][]string{
		"static-go": {gobin, d, d},
		"java":      {java, javaFlags, "-XX:+UseSerialGC", "-cp", dir, "Conf", d, d},
	} {
		t.Run(name, func(t *testing.T) {
			clock := newClock(t, "4")
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			sup, err := dilate.Start(dilate.Config{Args: argv, Clock: clock, Stdout: w, Stderr: os.Stderr})
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			flipped := make(chan int)
			go func() {
				n := 0
				ks := []string{"4", "3", "5", "1/2"}
				for {
					select {
					case <-stop:
						flipped <- n
						return
					case <-time.After(30 * time.Millisecond):
					}
					k, _ := vclock.ParseTDF(ks[n%len(ks)])
					if _, err := clock.SetTDF(k); err != nil {
						t.Error(err)
					}
					n++
				}
			}()
			var steps, fails int
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				switch f := strings.Fields(sc.Text()); {
				case len(f) > 0 && f[0] == "E":
					steps++
				case len(f) > 0 && f[0] == "F":
					fails++
					t.Errorf("check failed: %s", sc.Text())
				}
			}
			close(stop)
			n := <-flipped
			st, err := sup.Wait()
			if err != nil || st != (dilate.Status{}) {
				t.Fatalf("program ended with %v, %v", st, err)
			}
			t.Logf("%d steps, %d rate changes, %d seccomp stops", steps, n, total(sup.Stops()))
			if steps < 8 {
				t.Errorf("only %d steps completed", steps)
			}
		})
	}
}

func total(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}
