package dilate

import (
	"os"

	"github.com/vmux/vmux/internal/linux"
)

// The launcher's handshake: after installing its filter, the launcher
// makes the trapped call ptrace(handshakeMagic, listener, 0, 0), which no
// real ptrace request is. At that seccomp stop the supervisor copies the
// filter's listener out of the launcher (pidfd_getfd) and skips the call
// with result 0; the launcher closes its copy and execs. Through the
// listener the supervisor later answers the clock-fd notification it
// injects at every exec of the tree (vdso.go): that is how a read-only
// descriptor of the clock page gets into a tracee whatever its user, its
// namespaces or its open descriptors.
const handshakeMagic = 0x766d_7578 // "vmux"

// The notification the exec injection makes: close(clockFdMagic,
// clockFdMagic2), sent by the filter to the listener (USER_NOTIF) rather
// than run. No real close passes both values.
const (
	clockFdMagic  = 0x7fff_c10c
	clockFdMagic2 = 0x766d_7578
)

// handshake takes the launcher's listener (argument 1 of the call).
func (t *tracer) handshake(th *thread, regs *linux.Regs) error {
	tr := th.tree
	tr.handshook = true
	result := uint64(0)
	if tr.listener == nil && tr.pidfd != nil {
		l, err := linux.PidfdGetfd(int(tr.pidfd.Fd()), int(regs.Rsi))
		if err != nil {
			t.s.log.Warn("taking the launcher's seccomp listener; its programs' clock reads will be trapped", "err", err)
			result = ^uint64(0) // -1: the launcher goes on without
		} else {
			tr.listener = os.NewFile(uintptr(l), "seccomp-listener")
		}
	}
	regs.Orig_rax = ^uint64(0) // skip the call
	regs.Rax = result
	if err := linux.PtraceSetRegs(th.tid, regs); err != nil {
		return ignoreGone(err)
	}
	return t.cont(th, 0)
}

// listenerOf is th's tree's listener, or nil.
func listenerOf(th *thread) *os.File {
	if th.tree == nil {
		return nil
	}
	return th.tree.listener
}
