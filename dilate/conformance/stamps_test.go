package conformance

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vmux/vmux/internal/testutil"
)

// TestPacketTimestampsDilated reproduces issue 10, item 10: kernel packet
// timestamps were real time while the program's clock is virtual, so
// `vmux run --tdf 10 -- ping -c2 127.0.0.1` reported 10 ms, then 4515 ms.
// Every way to get a stamp (SO_TIMESTAMP, SO_TIMESTAMPNS, SO_TIMESTAMPING
// by recvmsg, recvmmsg, SIOCGSTAMP, SIOCGSTAMPNS, in a thread that existed
// before the option was set and in a child forked after) now reads within
// milliseconds of the program's own clock, at a virtual start years away
// from real time.
func TestPacketTimestampsDilated(t *testing.T) {
	gcc := testutil.MustHaveCommand(t, "gcc")
	vmux := buildVmux(t)
	bin := filepath.Join(t.TempDir(), "stamps")
	if out, err := exec.Command(gcc, "-O2", "-Wall", "-o", bin, "testdata/stamps.c", "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("building stamps.c: %v\n%s", err, out)
	}
	out, err := exec.Command(vmux, "run", "--tdf", "10", "--start", "2030-01-01T00:00:00Z", "--", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("stamps: %v\n%s", err, out)
	}
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("stamps printed %q", l)
		}
		seen[f[0]]++
		d, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Errorf("%s: no stamp (%s)", f[0], f[1])
			continue
		}
		// A stamp is taken before the receive returns: at most the
		// receive's own (virtual) latency earlier, never later.
		if d > 0 || d < -100e6 {
			t.Errorf("%s: stamp %d ns from the program's clock, want within 100 ms before it", f[0], d)
		}
	}
	for _, w := range []string{"thread", "timestampns", "timestamp", "timestamping", "recvmmsg", "siocgstamp", "siocgstampns", "child"} {
		if seen[w] == 0 {
			t.Errorf("no %s line in:\n%s", w, out)
		}
	}
}

var rttRE = regexp.MustCompile(`rtt min/avg/max/mdev = ([0-9.]+)/([0-9.]+)/([0-9.]+)/`)

// TestPingUnderDilation: the README's example reports RTTs of loopback at
// tdf 10: a fraction of a millisecond (it was 4515 ms).
func TestPingUnderDilation(t *testing.T) {
	testutil.MustRoot(t) // ping's raw socket (its cap_net_raw does not survive no_new_privs)
	ping := testutil.MustHaveCommand(t, "ping")
	vmux := buildVmux(t)
	out, err := exec.Command(vmux, "run", "--tdf", "10", "--", ping, "-c3", "-i", "0.2", "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	m := rttRE.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no rtt line:\n%s", out)
	}
	max, _ := strconv.ParseFloat(m[3], 64)
	if max <= 0 || max > 1 {
		t.Errorf("loopback RTT max %v ms at tdf 10, want (0, 1] ms:\n%s", max, out)
	}
}
