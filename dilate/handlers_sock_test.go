package dilate

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// stampParams: tdf 10, virtual REALTIME = real REALTIME at real 1000 s.
func stampParams(t *testing.T) vclock.Params {
	t.Helper()
	var now vclock.Now
	now[vclock.Realtime] = 1000 * nsPerSec
	p, err := vclock.NewParams(vclock.Config{TDF: vclock.TDF{Num: 10, Den: 1}}, now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func cmsg(level, typ int32, data ...int64) []byte {
	b := make([]byte, 16+8*len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(b)))
	binary.LittleEndian.PutUint32(b[8:], uint32(level))
	binary.LittleEndian.PutUint32(b[12:], uint32(typ))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[16+8*i:], uint64(v))
	}
	return b
}

func words(b []byte) []int64 {
	out := make([]int64, len(b)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

// TestDilateCmsgs: every SOL_SOCKET timestamp message is converted (real
// 1010 s is virtual 1001 s at tdf 10 from 1000 s), zero stamps and the
// hardware one stay, other messages are untouched, and a malformed buffer
// is walked without a panic.
func TestDilateCmsgs(t *testing.T) {
	p := stampParams(t)
	var buf []byte
	buf = append(buf, cmsg(solSocket, soTimestampOld, 1010, 500000)...)              // timeval
	buf = append(buf, cmsg(solSocket, soTimestampNSNew, 1010, 500000000)...)         // timespec
	buf = append(buf, cmsg(solSocket, soTimestampingOld, 1010, 0, 0, 0, 1234, 5)...) // sw, legacy, hw
	buf = append(buf, cmsg(0 /* SOL_IP */, soTimestampOld, 1010, 7)...)              // not ours
	buf = append(buf, cmsg(solSocket, soTimestampNSOld, 0, 0)...)                    // no stamp
	if !dilateCmsgs(buf, &p) {
		t.Fatal("nothing changed")
	}
	w := words(buf)
	want := [][]int64{ // first data word, then the values
		{2, 1001, 50000},             // 1010.5 s -> 1001.05 s (microseconds)
		{6, 1001, 50000000},          // nanoseconds
		{10, 1001, 0, 0, 0, 1234, 5}, // software converted, hardware kept
		{18, 1010, 7},                // SOL_IP: untouched
		{22, 0, 0},                   // zero: untouched
	}
	for _, c := range want {
		for i, v := range c[1:] {
			if got := w[int(c[0])+i]; got != v {
				t.Errorf("word %d: %d, want %d", int(c[0])+i, got, v)
			}
		}
	}
	// Truncated and lying lengths.
	for _, bad := range [][]byte{cmsg(solSocket, soTimestampNSOld, 1010)[:20], {1, 2, 3},
		append(cmsg(solSocket, soTimestampNSOld, 1010, 1)[:8], make([]byte, 8)...)} {
		dilateCmsgs(bad, &p)
	}
	b := cmsg(solSocket, soTimestampNSOld, 1010, 1)
	binary.LittleEndian.PutUint64(b, 1<<40) // cmsg_len past the buffer
	if dilateCmsgs(b, &p) {
		t.Error("converted a message whose length runs past the buffer")
	}
}

// TestStampFilter: the launcher's filter leaves recvmsg alone (most
// programs never ask for timestamps), traps the timestamp options and
// ioctls; the per-process timestamp filter traps exactly recvmsg and
// recvmmsg, whatever their arguments.
func TestStampFilter(t *testing.T) {
	base, err := buildFilter()
	if err != nil {
		t.Fatal(err)
	}
	x86 := uint32(unix.AUDIT_ARCH_X86_64)
	eval := func(p linux.SeccompProgram, nr uint32, args ...uint64) linux.SeccompAction {
		a, err := linux.EvalSeccomp(p, x86, nr, args...)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := eval(base, sysRecvmsg, 3, 0x1000, 0); a != linux.SeccompAllow {
		t.Errorf("launcher's filter on recvmsg: %#x, want allow", a)
	}
	if a := eval(base, sysRecvmmsg, 3, 0x1000, 1, 0, 0); a != linux.SeccompAllow {
		t.Errorf("launcher's filter on recvmmsg without timeout: %#x, want allow", a)
	}
	for _, o := range stampOpts {
		if a := eval(base, sysSetsockopt, 3, solSocket, uint64(o), 0x1000, 4); a != linux.SeccompTrace {
			t.Errorf("setsockopt(SOL_SOCKET, %d): %#x, want trace", o, a)
		}
	}
	if a := eval(base, sysSetsockopt, 3, solSocket, 7 /* SO_SNDBUF */, 0x1000, 4); a != linux.SeccompAllow {
		t.Errorf("setsockopt(SO_SNDBUF): %#x, want allow", a)
	}
	for _, c := range stampIoctls {
		if a := eval(base, sysIoctl, 3, uint64(c), 0x1000); a != linux.SeccompTrace {
			t.Errorf("ioctl(%#x): %#x, want trace", c, a)
		}
	}
	if a := eval(base, sysIoctl, 1, unix.TCGETS, 0x1000); a != linux.SeccompAllow {
		t.Errorf("ioctl(TCGETS): %#x, want allow", a)
	}
	for nr := uint32(0); nr < maxSysno; nr++ {
		want := linux.SeccompAllow
		if nr == sysRecvmsg || nr == sysRecvmmsg {
			want = linux.SeccompTrace
		}
		if a := eval(stampProg, nr, 3, 0x1000, 0, 0, 0); a != want {
			t.Errorf("timestamp filter on %d: %#x, want %#x", nr, a, want)
		}
	}
	if 16+8*len(stampProg) > slotSize {
		t.Errorf("timestamp filter of %d instructions does not fit a %d-byte slot", len(stampProg), slotSize)
	}
}
