package ptrace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
)

// An Agent is a thread the tracer starts inside the tracee that runs
// system calls for it from then on, so that the tracee's own threads are
// never stopped or given foreign registers again. It is what makes a
// tracer's death harmless: injecting through a held thread leaves, for
// the few microseconds of each call, a thread whose registers point into
// injected code, which the kernel lets run on if the tracer dies (and
// which then crashes the tracee); an agent only ever blocks in read(2) on
// a pipe whose other end the tracer holds, and when the tracer dies it
// reads end-of-file, closes its descriptors and exits, leaving the
// tracee's threads as they were.
//
// In a nutshell: StartAgent (with a thread held, as for Call) writes a
// small code page (source in agent_amd64.s.txt), installs the read end of
// a command pipe and the write end of a reply pipe into the tracee, and
// runs clone(CLONE_VM|CLONE_THREAD|...) from that page: the new thread
// blocks every signal (the tracee's signal handlers never run on it; a
// process-directed signal goes to another thread), then loops: read 8
// bytes from the command pipe, run the call table (the same 64-byte
// entries as Batch) and write 8 bytes to the reply pipe. Run fills the
// table, writes the command and waits for the reply. Close closes the
// command pipe; the agent exits.
type Agent struct {
	pid, tid int
	base     uint64

	mu   sync.Mutex // serializes Run and Close
	cmd  *os.File   // write end: the agent reads the other
	done *os.File   // read end: the agent writes the other
}

// AgentPages is the size, in pages, of the tracee memory an agent uses:
// its code, control block, stack, and a call table of agentCalls entries.
const AgentPages = 8

const (
	agentCalls   = (AgentPages - 3) * 4096 / entrySize
	agentTrapAt  = 8 // rip after the clone stub's int3
	sysClone     = 56
	agentCloneFl = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000 | 0x800000 // VM FS FILES SIGHAND THREAD SYSVSEM UNTRACED
	ctlCmdFd     = 0
	ctlDoneFd    = 8
	ctlTable     = 16
	ctlCount     = 24
	ctlMask      = 32
)

// agentCode: the clone stub (the parent traps at its int3; the child
// jumps to the agent) and the agent loop. Assembled with GNU as from
// agent_amd64.s.txt (as -o a.o agent_amd64.s.txt && objdump -d a.o).
var agentCode = []byte{
	0x0f, 0x05,
	0x48, 0x85, 0xc0,
	0x74, 0x01,
	0xcc,
	0xb8, 0x0e, 0x00, 0x00, 0x00,
	0xbf, 0x02, 0x00, 0x00, 0x00,
	0x49, 0x8d, 0x77, 0x20,
	0x31, 0xd2,
	0x41, 0xba, 0x08, 0x00, 0x00, 0x00,
	0x0f, 0x05,
	0x31, 0xc0,
	0x41, 0x8b, 0x3f,
	0x49, 0x8d, 0x77, 0x28,
	0xba, 0x08, 0x00, 0x00, 0x00,
	0x0f, 0x05,
	0x48, 0x83, 0xf8, 0x08,
	0x75, 0x4e,
	0x4d, 0x8b, 0x6f, 0x10,
	0x4d, 0x8b, 0x77, 0x18,
	0x4d, 0x85, 0xf6,
	0x74, 0x2b,
	0x49, 0x8b, 0x45, 0x00,
	0x49, 0x8b, 0x7d, 0x08,
	0x49, 0x8b, 0x75, 0x10,
	0x49, 0x8b, 0x55, 0x18,
	0x4d, 0x8b, 0x55, 0x20,
	0x4d, 0x8b, 0x45, 0x28,
	0x4d, 0x8b, 0x4d, 0x30,
	0x0f, 0x05,
	0x49, 0x89, 0x45, 0x38,
	0x49, 0x83, 0xc5, 0x40,
	0x49, 0xff, 0xce,
	0xeb, 0xd0,
	0xb8, 0x01, 0x00, 0x00, 0x00,
	0x41, 0x8b, 0x7f, 0x08,
	0x49, 0x8d, 0x77, 0x28,
	0xba, 0x08, 0x00, 0x00, 0x00,
	0x0f, 0x05,
	0xeb, 0x9c,
	0xb8, 0x03, 0x00, 0x00, 0x00,
	0x41, 0x8b, 0x3f,
	0x0f, 0x05,
	0xb8, 0x03, 0x00, 0x00, 0x00,
	0x41, 0x8b, 0x7f, 0x08,
	0x0f, 0x05,
	0xb8, 0x3c, 0x00, 0x00, 0x00,
	0x31, 0xff,
	0x0f, 0x05,
}

// StartAgent starts an agent in process pid, using AgentPages pages of
// read-write memory at base in the tracee (the caller maps them and may
// keep them across agents; the first page is made executable). in must
// hold a thread of pid; it is used for the few calls that set the agent
// up and stays usable after.
func (in *Injector) StartAgent(pid int, base uint64) (*Agent, error) {
	code, ctl, stack, table := base, base+4096, base+3*4096, base+3*4096
	if err := linux.TraceeWrite(in.tid, code, agentCode); err != nil {
		return nil, in.gone(err)
	}
	if _, err := in.Call(sysMprotect, code, 4096, ProtRead|protExec); err != nil {
		return nil, fmt.Errorf("start agent: make its code executable: %w", err)
	}
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	doneR, doneW, err := os.Pipe()
	if err != nil {
		cmdR.Close()
		cmdW.Close()
		return nil, err
	}
	closeAll := func() { cmdR.Close(); cmdW.Close(); doneR.Close(); doneW.Close() }
	rcmd, err := InstallFD(in, pid, int(cmdR.Fd()))
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("start agent: %w", err)
	}
	rdone, err := InstallFD(in, pid, int(doneW.Fd()))
	if err != nil {
		in.Call(sysClose, uint64(rcmd))
		closeAll()
		return nil, fmt.Errorf("start agent: %w", err)
	}
	cmdR.Close()
	doneW.Close()
	var blk [40]byte
	le := binary.LittleEndian
	le.PutUint32(blk[ctlCmdFd:], uint32(rcmd))
	le.PutUint32(blk[ctlDoneFd:], uint32(rdone))
	le.PutUint64(blk[ctlTable:], table)
	le.PutUint64(blk[ctlMask:], ^uint64(0))
	if err := linux.TraceeWrite(in.tid, ctl, blk[:]); err != nil {
		closeAll()
		return nil, in.gone(err)
	}
	undo := func() {
		in.Call(sysClose, uint64(rcmd))
		in.Call(sysClose, uint64(rdone))
		cmdW.Close()
		doneR.Close()
	}
	// The new thread inherits the signal mask of the one that clones it:
	// block everything around the clone, so that no handler of the tracee
	// can run on the agent before it blocks signals itself.
	const sysSigprocmask, sigSetmask = 14, 2
	oldMask := ctl + 48
	if _, err := in.Call(sysSigprocmask, sigSetmask, ctl+ctlMask, oldMask, 8); err != nil {
		undo()
		return nil, fmt.Errorf("start agent: block signals: %w", err)
	}
	defer in.Call(sysSigprocmask, sigSetmask, oldMask, 0, 8)
	r := in.saved
	r.Rip, r.Rax, r.Orig_rax = code, sysClone, ^uint64(0)
	r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8 = agentCloneFl, stack, 0, 0, 0
	r.R15 = ctl
	if err := linux.PtraceSetRegs(in.tid, &r); err != nil {
		undo()
		return nil, in.gone(err)
	}
	if err := in.contToTrap(code + agentTrapAt); err != nil {
		undo()
		return nil, err
	}
	if err := linux.PtraceGetRegs(in.tid, &r); err != nil {
		undo()
		return nil, in.gone(err)
	}
	if v := int64(r.Rax); v <= 0 {
		undo()
		return nil, fmt.Errorf("start agent: clone: %w", syscall.Errno(-v))
	}
	return &Agent{pid: pid, tid: int(r.Rax), base: base, cmd: cmdW, done: doneR}, nil
}

// contToTrap resumes the held thread until it traps at rip want (an int3
// of injected code), holding back other signals as Call does.
func (in *Injector) contToTrap(want uint64) error {
	if err := linux.PtraceCont(in.tid, 0); err != nil {
		return in.gone(err)
	}
	var r linux.Regs
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
			if r.Rip == want {
				return nil
			}
		}
		if uint32(ws)>>16 == 0 {
			in.sigs = append(in.sigs, int(sig))
		}
		if err := linux.PtraceCont(in.tid, 0); err != nil {
			return in.gone(err)
		}
	}
}

// Tid is the agent's thread.
func (a *Agent) Tid() int { return a.tid }

// ErrAgentGone means the agent thread is gone (the tracee exited or
// closed the agent's descriptors).
var ErrAgentGone = errors.New("agent thread gone")

// Run runs calls in order on the agent (at most agentCalls of them) and
// fills in each call's Ret, as Batch does; the tracee's other threads run
// on meanwhile. It waits at most timeout.
func (a *Agent) Run(calls []Syscall, timeout time.Duration) error {
	if len(calls) > agentCalls {
		return fmt.Errorf("agent: %d calls, at most %d", len(calls), agentCalls)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return ErrAgentGone
	}
	tab := make([]byte, len(calls)*entrySize)
	le := binary.LittleEndian
	for i, c := range calls {
		e := tab[i*entrySize:]
		le.PutUint64(e[0:], c.Nr)
		for j, v := range c.Args {
			le.PutUint64(e[8+8*j:], v)
		}
	}
	var cnt [8]byte
	le.PutUint64(cnt[:], uint64(len(calls)))
	table, ctl := a.base+3*4096, a.base+4096
	if err := linux.TraceeWrite(a.pid, table, tab); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := linux.TraceeWrite(a.pid, ctl+ctlCount, cnt[:]); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if _, err := a.cmd.Write(cnt[:]); err != nil {
		return fmt.Errorf("agent: %w (%w)", ErrAgentGone, err)
	}
	a.done.SetReadDeadline(time.Now().Add(timeout))
	var reply [8]byte
	if _, err := a.done.Read(reply[:]); err != nil {
		return fmt.Errorf("agent: %w (%w)", ErrAgentGone, err)
	}
	if err := linux.TraceeRead(a.pid, table, tab); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	for i := range calls {
		calls[i].Ret = le.Uint64(tab[i*entrySize+56:])
	}
	return nil
}

// Close ends the agent (it sees end-of-file on its command pipe, closes
// its descriptors and exits) and waits up to a second for its thread to go.
func (a *Agent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return nil
	}
	a.cmd.Close()
	a.cmd = nil
	defer a.done.Close()
	task := "/proc/" + strconv.Itoa(a.pid) + "/task/" + strconv.Itoa(a.tid)
	for i := 0; i < 1000; i++ {
		if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("agent thread %d of %d did not exit", a.tid, a.pid)
}
