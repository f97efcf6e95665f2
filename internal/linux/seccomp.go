package linux

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SeccompAction is what a filter returns for a syscall.
type SeccompAction uint32

// Actions used by vmux filters.
const (
	SeccompAllow SeccompAction = unix.SECCOMP_RET_ALLOW
	SeccompTrace SeccompAction = unix.SECCOMP_RET_TRACE
)

// SeccompErrno returns the action that fails a syscall with errno.
func SeccompErrno(errno unix.Errno) SeccompAction {
	return SeccompAction(unix.SECCOMP_RET_ERRNO | uint32(errno)&unix.SECCOMP_RET_DATA)
}

// CondKind is a test on one syscall argument.
type CondKind int

const (
	// CondNonZero passes when the whole 64-bit argument is non-zero (a non-NULL pointer).
	CondNonZero CondKind = iota
	// CondPositive32 passes when the low 32 bits, read as a signed int, are > 0.
	CondPositive32
	// CondMaskedIn passes when (low 32 bits & Mask) equals one of Values.
	CondMaskedIn
)

// SeccompCond is one argument test; every condition of a rule must pass.
type SeccompCond struct {
	Arg    int // 0..5
	Kind   CondKind
	Mask   uint32
	Values []uint32
}

// SeccompRule returns Action for syscall Nr when all Conds pass; otherwise
// the program's default action applies.
type SeccompRule struct {
	Nr     uint32
	Conds  []SeccompCond
	Action SeccompAction
}

// SeccompProgram is an assembled classic BPF filter.
type SeccompProgram []unix.SockFilter

// ErrFilterTooLarge means a rule's jumps do not fit classic BPF's 8-bit offsets.
var ErrFilterTooLarge = errors.New("seccomp filter too large for classic BPF jumps")

// seccomp_data offsets (x86-64, little endian).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// bpfAsm is a tiny classic-BPF assembler with forward labels.
type bpfAsm struct {
	ins    []unix.SockFilter
	jt, jf []string // pending label per instruction ("" = fallthrough)
	labels map[string]int
}

func (a *bpfAsm) stmt(code uint16, k uint32) {
	a.ins = append(a.ins, unix.SockFilter{Code: code, K: k})
	a.jt, a.jf = append(a.jt, ""), append(a.jf, "")
}

func (a *bpfAsm) jump(code uint16, k uint32, jt, jf string) {
	a.ins = append(a.ins, unix.SockFilter{Code: code, K: k})
	a.jt, a.jf = append(a.jt, jt), append(a.jf, jf)
}

func (a *bpfAsm) label(name string) { a.labels[name] = len(a.ins) }

func (a *bpfAsm) resolve() (SeccompProgram, error) {
	for i := range a.ins {
		for _, p := range []struct {
			name string
			dst  *uint8
		}{{a.jt[i], &a.ins[i].Jt}, {a.jf[i], &a.ins[i].Jf}} {
			if p.name == "" {
				continue
			}
			at, ok := a.labels[p.name]
			if !ok {
				return nil, fmt.Errorf("assembling seccomp filter: undefined label %q", p.name)
			}
			off := at - i - 1
			if off < 0 || off > 255 {
				return nil, ErrFilterTooLarge
			}
			*p.dst = uint8(off)
		}
	}
	return SeccompProgram(a.ins), nil
}

const (
	ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	jeqK  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	jgtK  = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	andK  = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	ret   = unix.BPF_RET | unix.BPF_K
)

// AssembleSeccomp builds a filter for x86-64: other architectures and the
// x32 ABI get otherArch, listed syscalls follow their rules, everything else
// gets def.
func AssembleSeccomp(rules []SeccompRule, def, otherArch SeccompAction) (SeccompProgram, error) {
	a := &bpfAsm{labels: map[string]int{}}
	a.stmt(ldAbs, offArch)
	a.jump(jeqK, unix.AUDIT_ARCH_X86_64, "", "other")
	a.stmt(ldAbs, offNr)
	a.jump(jgtK, 0x3fffffff, "other", "") // x32 syscalls carry bit 30
	for i, r := range rules {
		next := fmt.Sprintf("r%d", i+1)
		a.stmt(ldAbs, offNr)
		a.jump(jeqK, r.Nr, "", next)
		for j, c := range r.Conds {
			lo := uint32(offArgs + 8*c.Arg)
			pass := fmt.Sprintf("r%dc%d", i, j)
			switch c.Kind {
			case CondNonZero:
				a.stmt(ldAbs, lo)
				a.jump(jeqK, 0, "", pass)
				a.stmt(ldAbs, lo+4)
				a.jump(jeqK, 0, "def", pass)
			case CondPositive32:
				a.stmt(ldAbs, lo)
				a.jump(jeqK, 0, "def", "")
				a.jump(jgtK, 0x7fffffff, "def", pass)
			case CondMaskedIn:
				a.stmt(ldAbs, lo)
				a.stmt(andK, c.Mask)
				for _, v := range c.Values {
					a.jump(jeqK, v, pass, "")
				}
				a.stmt(ret, uint32(def))
			default:
				return nil, fmt.Errorf("assembling seccomp filter: unknown condition kind %d", c.Kind)
			}
			a.label(pass)
		}
		a.stmt(ret, uint32(r.Action))
		a.label(next)
	}
	a.label("def")
	a.stmt(ret, uint32(def))
	a.label("other")
	a.stmt(ret, uint32(otherArch))
	return a.resolve()
}

// SetNoNewPrivs sets PR_SET_NO_NEW_PRIVS on the calling thread, which an
// unprivileged seccomp filter needs and which makes setuid bits inert.
func SetNoNewPrivs() error {
	return syscallErr("prctl(PR_SET_NO_NEW_PRIVS)", unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
}

// SetTimerSlack sets the calling thread's timer slack (PR_SET_TIMERSLACK):
// how far the kernel may defer its sleeps' wake-ups to batch them. Children
// inherit it across fork and exec.
func SetTimerSlack(ns uint64) error {
	return syscallErr("prctl(PR_SET_TIMERSLACK)", unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(ns), 0, 0, 0))
}

// ProbeStop makes a clock_nanosleep call with clock id clock that the
// kernel rejects (EINVAL, before it reads any argument), carrying arg in
// its fourth register: a traced call the tracer can time.
func ProbeStop(clock int32, arg int64) {
	_, _, _ = unix.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, uintptr(clock), 0, 0, uintptr(arg), 0, 0)
}

// InstallSeccomp installs prog on the calling thread only (no TSYNC): the
// caller locks its OS thread and execs from it, so the new program and every
// descendant inherit the filter.
func InstallSeccomp(prog SeccompProgram) error {
	if len(prog) == 0 {
		return errors.New("installing seccomp filter: empty program")
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	if e != 0 {
		return syscallErr("seccomp(SET_MODE_FILTER)", e)
	}
	return nil
}
