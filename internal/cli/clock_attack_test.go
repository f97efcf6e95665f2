package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
	"github.com/vmux/vmux/rt/vclock"
)

// clockAttack is the attack of issue 10 item 8 as a dilated program makes
// it: every memfd it can reach through /proc/self/fd and /proc/PPID/fd (the
// supervisor's clock page among them) is reopened read-write, written at
// the rate's offset and mapped shared writable. It prints a JSON object
// (descriptor -> outcome), then sleeps 0.3 virtual seconds.
const clockAttack = `
import json, mmap, os, sys, time
off, res = int(sys.argv[1]), {}
for pid in ("self", str(os.getppid())):
    d = "/proc/%s/fd" % pid
    for fd in os.listdir(d):
        try:
            link = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if "memfd:" not in link:
            continue
        k = "%s/%s %s" % (pid, fd, link)
        try:
            f = os.open(os.path.join(d, fd), os.O_RDWR)
        except OSError as e:
            res[k] = "open refused: " + e.strerror
            continue
        try:
            os.pwrite(f, (1 << 32).to_bytes(8, "little"), off)
            res[k] = "WRITTEN"
        except OSError as e:
            res[k] = "write refused: " + e.strerror
        try:
            mmap.mmap(f, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            res[k] += ", MAPPED WRITABLE"
        except OSError as e:
            res[k] += ", mmap refused: " + e.strerror
        os.close(f)
print(json.dumps(res), flush=True)
time.sleep(0.3)
`

// TestDilatedProgramCannotRaiseItsRate: a program under vmux run --tdf 10
// finds the clock's memfd in its supervisor's descriptors and tries to
// write the rate (before the fix it raised 0.1 virtual s/s to 1.0): every
// write and writable mapping is refused, and its 0.3 virtual seconds of
// sleep still take 3 real seconds.
func TestDilatedProgramCannotRaiseItsRate(t *testing.T) {
	testutil.MustRoot(t)
	py := testutil.MustHaveCommand(t, "python3")
	vmux := buildVmux(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, vmux, "run", "--tdf", "10", "--", py, "-c", clockAttack, fmt.Sprint(vclock.PageOffMult)).CombinedOutput()
	took := time.Since(t0)
	if err != nil {
		t.Fatalf("vmux run: %v\n%s", err, out)
	}
	var res map[string]string
	line, _, _ := strings.Cut(string(out), "\n")
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("attack output: %v\n%s", err, out)
	}
	clocks := 0
	for fd, r := range res {
		t.Logf("%s: %s", fd, r)
		if strings.Contains(fd, "vmux-clock") {
			clocks++
		}
		if strings.Contains(r, "WRITTEN") || strings.Contains(r, "MAPPED") {
			t.Errorf("%s: %s", fd, r)
		}
	}
	if clocks == 0 {
		t.Fatalf("the program found no clock memfd to attack (the probe is not real): %v", res)
	}
	if took < 2500*time.Millisecond {
		t.Errorf("0.3 virtual s at tdf 10 took %v real, want about 3 s: the rate changed", took)
	}
}
