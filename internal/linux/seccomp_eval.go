package linux

import (
	"encoding/binary"
	"fmt"
)

// EvalSeccomp runs prog (the instructions AssembleSeccomp emits) on a
// seccomp_data of arch, nr and args, as the kernel would, and returns the
// action. Tests use it to check a filter against the table it came from.
func EvalSeccomp(prog SeccompProgram, arch, nr uint32, args ...uint64) (SeccompAction, error) {
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[offNr:], nr)
	binary.LittleEndian.PutUint32(data[offArch:], arch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[offArgs+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case ldAbs:
			if int(in.K)+4 > len(data) {
				return 0, fmt.Errorf("evaluating seccomp filter: load past seccomp_data at %d", pc)
			}
			acc = binary.LittleEndian.Uint32(data[in.K:])
		case andK:
			acc &= in.K
		case jeqK:
			if acc == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case jgtK:
			if acc > in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case ret:
			return SeccompAction(in.K), nil
		default:
			return 0, fmt.Errorf("evaluating seccomp filter: unexpected instruction %#x at %d", in.Code, pc)
		}
	}
	return 0, fmt.Errorf("evaluating seccomp filter: program ran off its end")
}
