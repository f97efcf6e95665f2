package linux

import (
	"testing"

	"golang.org/x/sys/unix"
)

// run evaluates prog on a seccomp_data of arch, nr and args.
func run(t *testing.T, prog SeccompProgram, arch, nr uint32, args ...uint64) SeccompAction {
	t.Helper()
	act, err := EvalSeccomp(prog, arch, nr, args...)
	if err != nil {
		t.Fatal(err)
	}
	return act
}

func TestAssembleSeccomp(t *testing.T) {
	const nrA, nrB, nrC, nrD = 7, 202, 232, 23
	prog, err := AssembleSeccomp([]SeccompRule{
		{Nr: nrA, Action: SeccompTrace},
		{Nr: nrB, Action: SeccompTrace, Conds: []SeccompCond{
			{Arg: 1, Kind: CondMaskedIn, Mask: 0x7f, Values: []uint32{0, 9}},
			{Arg: 3, Kind: CondNonZero},
		}},
		{Nr: nrC, Action: SeccompTrace, Conds: []SeccompCond{{Arg: 3, Kind: CondPositive32}}},
		{Nr: nrD, Action: SeccompTrace, Conds: []SeccompCond{{Arg: 4, Kind: CondNonZero}}},
	}, SeccompAllow, SeccompErrno(unix.ENOSYS))
	if err != nil {
		t.Fatal(err)
	}
	x86 := uint32(unix.AUDIT_ARCH_X86_64)
	for _, tc := range []struct {
		name string
		arch uint32
		nr   uint32
		args []uint64
		want SeccompAction
	}{
		{"listed, no conditions", x86, nrA, nil, SeccompTrace},
		{"unlisted", x86, 1, nil, SeccompAllow},
		{"futex wait with timeout", x86, nrB, []uint64{0, 0x80, 0, 0x7fff0000}, SeccompTrace},
		{"futex wait_bitset, timeout in high word only", x86, nrB, []uint64{0, 0x89, 0, 1 << 40}, SeccompTrace},
		{"futex wait without timeout", x86, nrB, []uint64{0, 0x80, 0, 0}, SeccompAllow},
		{"futex wake", x86, nrB, []uint64{0, 0x81, 1, 0x1234}, SeccompAllow},
		{"epoll_wait 10 ms", x86, nrC, []uint64{0, 0, 0, 10}, SeccompTrace},
		{"epoll_wait 0", x86, nrC, []uint64{0, 0, 0, 0}, SeccompAllow},
		{"epoll_wait -1", x86, nrC, []uint64{0, 0, 0, 0xffffffff}, SeccompAllow},
		{"epoll_wait -1 sign-extended", x86, nrC, []uint64{0, 0, 0, ^uint64(0)}, SeccompAllow},
		{"select with timeout", x86, nrD, []uint64{0, 0, 0, 0, 0x1000}, SeccompTrace},
		{"select NULL timeout", x86, nrD, []uint64{0, 0, 0, 0, 0}, SeccompAllow},
		{"i386", unix.AUDIT_ARCH_I386, nrA, nil, SeccompErrno(unix.ENOSYS)},
		{"x32", x86, nrA | 0x40000000, nil, SeccompErrno(unix.ENOSYS)},
	} {
		if got := run(t, prog, tc.arch, tc.nr, tc.args...); got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestAssembleSeccompTooLarge(t *testing.T) {
	vals := make([]uint32, 300)
	_, err := AssembleSeccomp([]SeccompRule{{Nr: 1, Action: SeccompTrace,
		Conds: []SeccompCond{{Arg: 0, Kind: CondMaskedIn, Mask: ^uint32(0), Values: vals}}}}, SeccompAllow, SeccompAllow)
	if err != ErrFilterTooLarge {
		t.Fatalf("got %v, want ErrFilterTooLarge", err)
	}
}
