package ptrace

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vmux/vmux/internal/linux"
)

// maxCodeScan bounds how much of one executable mapping is read looking
// for a syscall instruction when there is no vDSO.
const maxCodeScan = 4 << 20

// FindSyscallInsn returns the address of a syscall instruction (0f 05)
// mapped executable in process pid: in its vDSO, or else in the first
// executable mapping that has one. Where it sits among other instructions
// does not matter: an injected call jumps straight to it and stops right
// after it.
func FindSyscallInsn(pid int) (uint64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return 0, fmt.Errorf("find a syscall instruction in %d: %w", pid, err)
	}
	defer f.Close()
	type span struct{ start, end uint64 }
	var vdso []span
	var code []span
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 || len(fs[1]) < 3 || fs[1][2] != 'x' || fs[1][0] != 'r' {
			continue
		}
		lo, hi, ok := strings.Cut(fs[0], "-")
		if !ok {
			continue
		}
		s, err1 := strconv.ParseUint(lo, 16, 64)
		e, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || e <= s {
			continue
		}
		if len(fs) >= 6 && fs[5] == "[vdso]" {
			vdso = append(vdso, span{s, e})
		} else if len(fs) < 6 || fs[5] != "[vsyscall]" {
			code = append(code, span{s, e})
		}
	}
	for _, sp := range append(vdso, code...) {
		n := min(sp.end-sp.start, maxCodeScan)
		buf := make([]byte, n)
		got, _ := linux.ReadProcessMemory(pid, sp.start, buf)
		if i := bytes.Index(buf[:got], []byte{0x0f, 0x05}); i >= 0 {
			return sp.start + uint64(i), nil
		}
	}
	return 0, fmt.Errorf("find a syscall instruction in %d: %w", pid, ErrNoSyscallInsn)
}
