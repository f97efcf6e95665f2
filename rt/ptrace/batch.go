package ptrace

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/vmux/vmux/internal/linux"
)

// Syscall is one call of a Batch: Nr and Args in, Ret (the raw rax: a
// result, or a negative errno) out.
type Syscall struct {
	Nr   uint64
	Args [6]uint64
	Ret  uint64
}

// Err returns the call's errno as a *CallError, or nil if it succeeded.
func (c *Syscall) Err() error {
	if v := int64(c.Ret); v < 0 && v > -4096 {
		return &CallError{Nr: c.Nr, Errno: syscall.Errno(-v)}
	}
	return nil
}

// batchCode runs a table of calls and traps. r15 points at the table, r14
// holds the count; each 64-byte entry is nr, six arguments and the result,
// which the code stores back. Assembled with GNU as (intel syntax) from:
//
//	loop:  test r14, r14 ; jz done
//	       mov rax, [r15] ; mov rdi, [r15+8] ; mov rsi, [r15+16]
//	       mov rdx, [r15+24] ; mov r10, [r15+32] ; mov r8, [r15+40]
//	       mov r9, [r15+48] ; syscall ; mov [r15+56], rax
//	       add r15, 64 ; dec r14 ; jmp loop
//	done:  int3
//
// (as -o b.o b.s && objdump -d b.o). The stack is not touched.
var batchCode = []byte{
	0x4d, 0x85, 0xf6, // test r14, r14
	0x74, 0x2a, // jz done
	0x49, 0x8b, 0x07, // mov rax, [r15]
	0x49, 0x8b, 0x7f, 0x08, // mov rdi, [r15+8]
	0x49, 0x8b, 0x77, 0x10, // mov rsi, [r15+16]
	0x49, 0x8b, 0x57, 0x18, // mov rdx, [r15+24]
	0x4d, 0x8b, 0x57, 0x20, // mov r10, [r15+32]
	0x4d, 0x8b, 0x47, 0x28, // mov r8, [r15+40]
	0x4d, 0x8b, 0x4f, 0x30, // mov r9, [r15+48]
	0x0f, 0x05, // syscall
	0x49, 0x89, 0x47, 0x38, // mov [r15+56], rax
	0x49, 0x83, 0xc7, 0x40, // add r15, 64
	0x49, 0xff, 0xce, // dec r14
	0xeb, 0xd1, // jmp loop
	0xcc, // int3
}

const (
	entrySize    = 64
	trapAfter    = 0x30 // rip after the int3
	sysMprotect  = 10
	protExec     = 0x4
	maxBatchCall = 4096
)

// Batch runs calls in order inside the tracee with a single stop (a small
// code page mapped on first use runs the table and traps), and fills in
// each call's Ret. It returns an error only if the batch itself could not
// run; a failing call shows in its Ret (see Syscall.Err) and the calls
// after it still run. Calls may not pass pointers into the table itself.
func (in *Injector) Batch(calls []Syscall) error {
	if in.finished {
		return fmt.Errorf("inject batch: injector already finished")
	}
	if len(calls) == 0 {
		return nil
	}
	if len(calls) > maxBatchCall {
		return fmt.Errorf("inject batch: %d calls, at most %d", len(calls), maxBatchCall)
	}
	if err := in.prepareCode(uint64(len(calls)) * entrySize); err != nil {
		return err
	}
	tab := make([]byte, len(calls)*entrySize)
	le := binary.LittleEndian
	for i, c := range calls {
		e := tab[i*entrySize:]
		le.PutUint64(e[0:], c.Nr)
		for j, a := range c.Args {
			le.PutUint64(e[8+8*j:], a)
		}
	}
	if err := linux.TraceeWrite(in.tid, in.table, tab); err != nil {
		return in.gone(err)
	}
	r := in.saved
	r.Rip, r.R14, r.R15 = in.code, uint64(len(calls)), in.table
	r.Orig_rax = ^uint64(0)
	if err := linux.PtraceSetRegs(in.tid, &r); err != nil {
		return in.gone(err)
	}
	if err := linux.PtraceCont(in.tid, 0); err != nil {
		return in.gone(err)
	}
	for {
		ws, err := waitStop(in.tid)
		if err != nil {
			return err
		}
		sig := ws.StopSignal()
		if sig == syscall.SIGTRAP && uint32(ws)>>16 == 0 {
			if err := linux.PtraceGetRegs(in.tid, &r); err != nil {
				return in.gone(err)
			}
			if r.Rip == in.code+trapAfter {
				break // our int3
			}
		}
		if uint32(ws)>>16 == 0 {
			in.sigs = append(in.sigs, int(sig)) // held back, as in Call
		}
		if err := linux.PtraceCont(in.tid, 0); err != nil {
			return in.gone(err)
		}
	}
	if err := linux.TraceeRead(in.tid, in.table, tab); err != nil {
		return in.gone(err)
	}
	for i := range calls {
		calls[i].Ret = le.Uint64(tab[i*entrySize+56:])
	}
	// the thread is now at a signal-delivery stop (the trap, suppressed):
	// Call and Batch resume it from here with their own registers
	return nil
}

// prepareCode maps the code page and a table of at least n bytes.
func (in *Injector) prepareCode(n uint64) error {
	if in.code == 0 {
		a, err := in.Call(sysMmap, 0, 4096, ProtRead|ProtWrite, MapPrivate|MapAnon, ^uint64(0), 0)
		if err != nil {
			return fmt.Errorf("map injected code: %w", err)
		}
		if err := linux.TraceeWrite(in.tid, a, batchCode); err != nil {
			in.Call(sysMunmap, a, 4096)
			return in.gone(err)
		}
		if _, err := in.Call(sysMprotect, a, 4096, ProtRead|protExec); err != nil {
			in.Call(sysMunmap, a, 4096)
			return fmt.Errorf("protect injected code: %w", err)
		}
		in.code = a
	}
	n = (n + 4095) &^ 4095
	if in.tableLen < n {
		if in.table != 0 {
			if _, err := in.Call(sysMunmap, in.table, in.tableLen); err != nil {
				return fmt.Errorf("unmap call table: %w", err)
			}
			in.table, in.tableLen = 0, 0
		}
		a, err := in.Call(sysMmap, 0, n, ProtRead|ProtWrite, MapPrivate|MapAnon, ^uint64(0), 0)
		if err != nil {
			return fmt.Errorf("map call table: %w", err)
		}
		in.table, in.tableLen = a, n
	}
	return nil
}
