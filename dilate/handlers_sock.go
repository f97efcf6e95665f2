package dilate

import (
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// Kernel packet timestamps. A socket with SO_TIMESTAMP, SO_TIMESTAMPNS or
// SO_TIMESTAMPING gets, in the control messages recvmsg and recvmmsg return,
// the CLOCK_REALTIME time the kernel stamped on each packet, and ioctl
// SIOCGSTAMP(NS) returns the last one. A dilated program compares them with
// its own (virtual) clock: ping's RTT is the cmsg stamp minus the send time
// it wrote in the packet, so an undilated stamp made `ping -c2` at tdf 10
// report 10 ms, then 4515 ms. Each stamp is converted to the program's
// virtual realtime at the call's exit.
//
// The cost: recvmsg and recvmmsg are hot in some programs (QUIC, D-Bus,
// fd passing) and most never ask for timestamps, so the launcher's filter
// does not trap them. The first successful setsockopt of a timestamp option
// in a process (trapped, rare) makes the supervisor inject, at that call's
// exit, a second seccomp filter into the process (SECCOMP_FILTER_FLAG_TSYNC:
// all its threads; inherited by its children and across exec) that traps
// exactly the table's entries marked stamps. Only processes that use
// timestamps pay a trap per receive. SIOCGSTAMP(NS) ioctls are rare: the
// launcher's filter traps them by command number.
//
// Hardware stamps (the third timespec of SO_TIMESTAMPING) come from the
// NIC's clock, not the system's: they are left alone.

// Socket options and ioctls (asm-generic/socket.h, linux/sockios.h); the
// SCM_ control message types are the option numbers.
const (
	soTimestampOld    = 29 // SCM_TIMESTAMP: struct timeval
	soTimestampNSOld  = 35 // SCM_TIMESTAMPNS: struct timespec
	soTimestampingOld = 37 // SCM_TIMESTAMPING: struct scm_timestamping (3 timespecs)
	soTimestampNew    = 63 // struct __kernel_sock_timeval (the same 16 bytes here)
	soTimestampNSNew  = 64 // struct __kernel_timespec
	soTimestampingNew = 65 // struct scm_timestamping64

	siocgstampOld   = 0x8906     // struct timeval
	siocgstampNSOld = 0x8907     // struct timespec
	siocgstampNew   = 0x80108906 // _IOR(0x89, 6, long long[2])
	siocgstampNSNew = 0x80108907

	seccompSetModeFilter = 1
	seccompFlagTsync     = 1
)

// stampOpts are the options that turn timestamps on; stampIoctls the
// ioctls that read one.
var (
	stampOpts   = []uint32{soTimestampOld, soTimestampNSOld, soTimestampingOld, soTimestampNew, soTimestampNSNew, soTimestampingNew}
	stampIoctls = []uint32{siocgstampOld, siocgstampNSOld, siocgstampNew, siocgstampNSNew}
)

// sockOpts is the setsockopt condition: the two timeouts and the
// timestamp options, at SOL_SOCKET.
var sockOpts = []linux.SeccompCond{
	{Arg: 1, Kind: linux.CondMaskedIn, Mask: ^uint32(0), Values: []uint32{solSocket}},
	{Arg: 2, Kind: linux.CondMaskedIn, Mask: ^uint32(0),
		Values: append([]uint32{soRcvtimeoOld, soSndtimeoOld, soRcvtimeoNew, soSndtimeoNew}, stampOpts...)},
}

func isStampOpt(regs *linux.Regs) bool {
	if int32(regs.Rsi) != solSocket {
		return false
	}
	for _, o := range stampOpts {
		if uint32(regs.Rdx) == o {
			return true
		}
	}
	return false
}

// sockoptEntry is setsockopt's rewriting: timeouts are scaled
// (setsockoptEntry), a timestamp option arms the process's timestamp
// filter at the call's exit.
func sockoptEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	if !isStampOpt(regs) {
		return setsockoptEntry(t, th, c, regs)
	}
	if t.stampFiltered(th.tgid) {
		return false, nil
	}
	c.exit = func(t *tracer, th *thread, c *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		return t.installStampFilter(th, c, regs)
	}
	return true, nil
}

// stampRules is the per-process filter's rule list: the table's stamps
// entries, unconditionally.
func stampRules() []linux.SeccompRule {
	var rules []linux.SeccompRule
	for _, e := range table {
		if e.stamps {
			rules = append(rules, linux.SeccompRule{Nr: e.nr, Action: linux.SeccompTrace})
		}
	}
	return rules
}

// buildStampFilter assembles it: everything else, and other ABIs, is left
// to the launcher's filter.
func buildStampFilter() (linux.SeccompProgram, error) {
	return linux.AssembleSeccomp(stampRules(), linux.SeccompAllow, linux.SeccompAllow)
}

// stampProg is the timestamp filter, assembled once (init: it derives from
// the table, whose entries lead here).
var stampProg linux.SeccompProgram

func init() {
	p, err := buildStampFilter()
	if err != nil || 16+8*len(p) > slotSize {
		panic("dilate: timestamp filter does not fit a scratch slot")
	}
	stampProg = p
}

// maxStamped bounds the processes remembered as filtered; beyond it the
// ones that are gone are forgotten.
const maxStamped = 4096

// stampFiltered reports whether process tgid (this very process: its start
// time is compared, against pid reuse) already has the timestamp filter.
func (t *tracer) stampFiltered(tgid int) bool {
	st, ok := t.stamped[tgid]
	return ok && st == procStartTime(tgid)
}

func (t *tracer) markStampFiltered(tgid int) {
	if t.stamped == nil {
		t.stamped = map[int]string{}
	}
	if len(t.stamped) >= maxStamped {
		for pid, st := range t.stamped {
			if procStartTime(pid) != st {
				delete(t.stamped, pid)
			}
		}
	}
	t.stamped[tgid] = procStartTime(tgid)
}

// installStampFilter injects seccomp(SET_MODE_FILTER, TSYNC, prog) into the
// thread, stopped at the exit of its setsockopt: the program is written to
// the call's scratch slot, the call is made at the syscall instruction the
// thread just executed, and the thread's registers are put back (the
// caller restores them once more). Signals that arrive meanwhile are
// queued again.
func (t *tracer) installStampFilter(th *thread, c *call, regs *linux.Regs) error {
	prog := stampProg
	const fprogSize = 16 // struct sock_fprog: u16 len, pad, pointer
	slot, ok := c.scratch(th)
	if !ok {
		return errNoScratch
	}
	buf := make([]byte, fprogSize+8*len(prog))
	binary.LittleEndian.PutUint16(buf[0:], uint16(len(prog)))
	binary.LittleEndian.PutUint64(buf[8:], slot+fprogSize)
	for i, ins := range prog {
		o := fprogSize + 8*i
		binary.LittleEndian.PutUint16(buf[o:], ins.Code)
		buf[o+2], buf[o+3] = ins.Jt, ins.Jf
		binary.LittleEndian.PutUint32(buf[o+4:], ins.K)
	}
	if err := linux.TraceeWrite(th.tid, slot, buf); err != nil {
		return err
	}
	insn := th.as.insn // a syscall instruction known to the supervisor
	if insn == 0 {
		insn = regs.Rip - 2 // the one that just ran setsockopt
	}
	in := t.newInjector(th.tid, *regs, insn)
	_, err := in.call(sysSeccomp, seccompSetModeFilter, seccompFlagTsync, slot)
	if err != nil && !errors.Is(err, errGone) {
		// A thread with filters of its own cannot be synchronized: at
		// least this thread, and the children it makes, are covered.
		t.s.log.Debug("timestamp filter without TSYNC", "tid", th.tid, "err", err)
		_, err = in.call(sysSeccomp, seccompSetModeFilter, 0, slot)
	}
	sigs, ferr := in.Finish() // the registers of the setsockopt's exit back
	if ferr = in.check(ferr); ferr != nil && err == nil {
		err = ferr
	}
	for _, s := range sigs {
		_ = linux.PtraceTgkill(th.tid, th.tid, s)
	}
	if err != nil {
		return err
	}
	t.markStampFiltered(th.tgid)
	return nil
}

// procStartTime is field 22 of /proc/PID/stat, "" if it is gone.
func procStartTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// recvmsgEntry converts the stamps in the control messages recvmsg
// returned (only processes with the timestamp filter trap it).
func recvmsgEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	if regs.Rsi == 0 {
		return false, nil
	}
	c.exit = func(_ *tracer, th *thread, c *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		return dilateControl(mem{th.tid}, c.saved.Rsi, &c.p)
	}
	return true, nil
}

// mmsghdrSize is sizeof(struct mmsghdr): a msghdr and the length received.
const mmsghdrSize = 64

// recvmmsgEntry rewrites recvmmsg's timeout (trapped by the launcher's
// filter when it has one) and converts the stamps of every message it
// returned (trapped in processes with the timestamp filter).
func recvmmsgEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	need, err := false, error(nil)
	if arg(regs, 4) != 0 {
		if need, err = inoutRel(4, false)(t, th, c, regs); err != nil {
			return need, err
		}
	}
	if !t.stampFiltered(th.tgid) || regs.Rsi == 0 {
		return need, nil
	}
	timeout := c.exit
	c.noExit = false
	c.exit = func(t *tracer, th *thread, c *call, regs *linux.Regs) error {
		var err error
		if timeout != nil {
			err = timeout(t, th, c, regs)
		}
		n := int64(regs.Rax)
		if retErrno(regs) != 0 || n <= 0 {
			return err
		}
		for i := range min(n, 1024) {
			if e := dilateControl(mem{th.tid}, c.saved.Rsi+uint64(i)*mmsghdrSize, &c.p); e != nil {
				return e
			}
		}
		return err
	}
	return true, nil
}

// maxControl bounds the control buffer read from a tracee.
const maxControl = 64 << 10

// dilateControl converts, in place, every packet timestamp in the control
// messages of the msghdr at addr (after the kernel filled it in).
func dilateControl(m mem, addr uint64, p *vclock.Params) error {
	hdr, err := m.read(addr, 7) // struct msghdr: 56 bytes
	if err != nil {
		return err
	}
	ctl, ctlLen := uint64(hdr[4]), uint64(hdr[5])
	if ctl == 0 || ctlLen < 16 {
		return nil
	}
	ctlLen = min(ctlLen, maxControl)
	buf := make([]byte, ctlLen)
	if err := linux.TraceeRead(m.tid, ctl, buf); err != nil {
		return err
	}
	if !dilateCmsgs(buf, p) {
		return nil
	}
	return linux.TraceeWrite(m.tid, ctl, buf)
}

// dilateCmsgs walks a control buffer and converts the realtime stamps of
// SOL_SOCKET timestamp messages; it reports whether it changed any.
func dilateCmsgs(buf []byte, p *vclock.Params) bool {
	changed := false
	for off := uint64(0); off+16 <= uint64(len(buf)); {
		l := binary.LittleEndian.Uint64(buf[off:])
		level := int32(binary.LittleEndian.Uint32(buf[off+8:]))
		typ := int32(binary.LittleEndian.Uint32(buf[off+12:]))
		if l < 16 || off+l > uint64(len(buf)) {
			break
		}
		data := buf[off+16 : off+l]
		if level == solSocket {
			switch typ {
			case soTimestampOld, soTimestampNew:
				changed = dilatePairs(data, 1, nsPerUsec, p) || changed
			case soTimestampNSOld, soTimestampNSNew:
				changed = dilatePairs(data, 1, 1, p) || changed
			case soTimestampingOld, soTimestampingNew:
				// ts[0] software, ts[1] legacy (zero), ts[2] hardware: the
				// NIC's clock, not ours.
				changed = dilatePairs(data, 2, 1, p) || changed
			}
		}
		off += (l + 7) &^ 7 // CMSG_ALIGN
	}
	return changed
}

// dilatePairs converts the first n (seconds, sub-second) pairs of data,
// sub-second values in units of unit ns; zero stamps (none taken) stay.
func dilatePairs(data []byte, n int, unit int64, p *vclock.Params) bool {
	changed := false
	for i := 0; i < n && 16*(i+1) <= len(data); i++ {
		b := data[16*i:]
		sec := int64(binary.LittleEndian.Uint64(b))
		sub := int64(binary.LittleEndian.Uint64(b[8:]))
		if (sec == 0 && sub == 0) || sec < 0 || sub < 0 || sub >= nsPerSec/unit {
			continue
		}
		ns, ok := tsToNs(sec, sub*unit)
		if !ok {
			continue
		}
		v := p.Virt(vclock.Realtime, ns)
		vs, vn := nsToTs(v)
		binary.LittleEndian.PutUint64(b, uint64(vs))
		binary.LittleEndian.PutUint64(b[8:], uint64(vn/unit))
		changed = true
	}
	return changed
}

// stampIoctlEntry converts SIOCGSTAMP(NS)'s result.
func stampIoctlEntry(t *tracer, th *thread, c *call, regs *linux.Regs) (bool, error) {
	if regs.Rdx == 0 {
		return false, nil
	}
	c.exit = func(_ *tracer, th *thread, c *call, regs *linux.Regs) error {
		if retErrno(regs) != 0 {
			return nil
		}
		virt := func(ns int64) int64 { return c.p.Virt(vclock.Realtime, ns) }
		switch uint32(c.saved.Rsi) {
		case siocgstampOld, siocgstampNew:
			return scaleTvAt(mem{th.tid}, c.saved.Rdx, 1, virt)
		}
		return scaleTsAt(mem{th.tid}, c.saved.Rdx, 1, virt)
	}
	return true, nil
}
