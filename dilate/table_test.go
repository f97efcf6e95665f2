package dilate

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmux/vmux/internal/linux"
)

// satisfying returns arguments that pass every condition, and for each
// condition arguments that fail it alone.
func satisfying(conds []linux.SeccompCond) (pass []uint64, fail [][]uint64) {
	pass = []uint64{1, 1, 1, 1, 1, 1}
	for _, c := range conds {
		switch c.Kind {
		case linux.CondNonZero, linux.CondPositive32:
			pass[c.Arg] = 1
		case linux.CondMaskedIn:
			pass[c.Arg] = uint64(c.Values[0])
		}
	}
	for _, c := range conds {
		f := append([]uint64(nil), pass...)
		switch c.Kind {
		case linux.CondNonZero, linux.CondPositive32:
			f[c.Arg] = 0
		case linux.CondMaskedIn:
			f[c.Arg] = uint64(c.Values[0]) ^ uint64(c.Mask) // every masked bit flipped
			for _, v := range c.Values {
				if uint32(f[c.Arg])&c.Mask == v {
					f[c.Arg] ^= 1 << 31
				}
			}
		}
		fail = append(fail, f)
	}
	return pass, fail
}

// TestTableAgrees: the filter traps exactly the table's syscalls under
// exactly their conditions, and every trapped syscall has a rewriting (or
// is handled by name before dispatch) and a name.
func TestTableAgrees(t *testing.T) {
	prog, err := buildFilter()
	if err != nil {
		t.Fatal(err)
	}
	x86 := uint32(unix.AUDIT_ARCH_X86_64)
	byNr := map[uint32]sysEntry{}
	for _, e := range table {
		byNr[e.nr] = e
	}
	for nr := uint32(0); nr < maxSysno; nr++ {
		e, listed := byNr[nr]
		listed = listed && !e.stampsOnly // checked against the timestamp filter (handlers_sock_test.go)
		pass, fail := satisfying(e.conds)
		act, err := linux.EvalSeccomp(prog, x86, nr, pass...)
		if err != nil {
			t.Fatal(err)
		}
		if (act == linux.SeccompTrace) != listed {
			t.Errorf("syscall %d (%s): filter returns %#x, table lists it: %v", nr, syscallName(uint64(nr)), act, listed)
		}
		if !listed {
			continue
		}
		if entries[nr] == nil && !e.special {
			t.Errorf("%s is trapped but has no rewriting", e.name)
		}
		if syscallName(uint64(nr)) != e.name {
			t.Errorf("syscall %d: name %q, table %q", nr, syscallName(uint64(nr)), e.name)
		}
		for i, args := range fail {
			if act, _ := linux.EvalSeccomp(prog, x86, nr, args...); act == linux.SeccompTrace {
				t.Errorf("%s: trapped although condition %d fails (args %#x)", e.name, i, args)
			}
		}
	}
	// The one rule outside the table: the supervisor's injected close.
	if act, _ := linux.EvalSeccomp(prog, x86, sysClose, clockFdMagic, clockFdMagic2); act != linux.SeccompUserNotif {
		t.Errorf("injected clock-fd close: filter returns %#x, want USER_NOTIF", act)
	}
	for _, args := range [][]uint64{{clockFdMagic, 0}, {3, clockFdMagic2}, {3, 0}} {
		if act, _ := linux.EvalSeccomp(prog, x86, sysClose, args...); act != linux.SeccompAllow {
			t.Errorf("close%v: filter returns %#x, want allow", args, act)
		}
	}
	// The drift the table was made to end: clock_getres was trapped with
	// no handler, a ptrace round trip for nothing.
	if act, _ := linux.EvalSeccomp(prog, x86, unix.SYS_CLOCK_GETRES); act != linux.SeccompAllow {
		t.Errorf("clock_getres: filter returns %#x, want allow", act)
	}
}
