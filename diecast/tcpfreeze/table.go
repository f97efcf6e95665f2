package tcpfreeze

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// TCP states as /proc/net/tcp numbers them (include/net/tcp_states.h).
const (
	stateEstablished = 1
	stateSynSent     = 2
	stateSynRecv     = 3
	stateFinWait1    = 4
	stateFinWait2    = 5
	stateTimeWait    = 6
	stateClose       = 7
	stateCloseWait   = 8
	stateLastAck     = 9
	stateListen      = 10
	stateClosing     = 11
)

// Timers as /proc/net/tcp's "tr" column shows them: 1 is the socket's
// write timer (retransmission, loss probe, reordering), 4 the zero-window
// probe; 2 is keepalive, 3 TIME_WAIT.
const (
	timerRetrans = 1
	timerProbe0  = 4
)

// entry is one socket of a /proc/net/tcp or tcp6 table. Those tables are
// read without taking any socket's lock (unlike sock_diag with
// INET_DIAG_INFO or getsockopt(TCP_INFO), which would sleep on a socket
// Freeze holds).
type entry struct {
	Local, Remote netip.AddrPort
	State         uint8
	TxQueue       uint32 // write_seq - snd_una: bytes not yet acknowledged (sent or not)
	Timer         uint8
	Inode         uint64 // 0 for sockets without a file (orphans, TIME_WAIT, requests)
}

// inFlight reports whether the socket has data, a SYN or a FIN waiting
// for an acknowledgment, so that a timer of its would retransmit across a
// pause.
func (e entry) inFlight() bool {
	switch e.State {
	case stateSynRecv, stateTimeWait, stateClose, stateListen:
		return false
	case stateSynSent:
		return true
	}
	return e.TxQueue > 0 || e.Timer == timerRetrans || e.Timer == timerProbe0
}

// throughEmulator reports whether the socket's peer is outside its
// network namespace, i.e. its packets cross the link emulator (which the
// pause stops); loopback connections are not paused and need no freeze.
func (e entry) throughEmulator() bool {
	r, l := e.Remote.Addr().Unmap(), e.Local.Addr().Unmap()
	return r.IsValid() && !r.IsLoopback() && !r.IsUnspecified() && r != l
}

// maxTableBytes bounds one table read (about 100,000 sockets).
const maxTableBytes = 16 << 20

// parseTable parses a /proc/net/tcp (v6 false) or tcp6 (v6 true) table.
// Malformed lines are errors: the format is the kernel's, fixed for
// decades.
func parseTable(r io.Reader, v6 bool) ([]entry, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxTableBytes))
	sc.Buffer(make([]byte, 0, 4096), 4096)
	var out []entry
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return out, fmt.Errorf("parsing tcp table: short line %q", line)
		}
		var e entry
		var err error
		if e.Local, err = parseAddrPort(f[1], v6); err != nil {
			return out, err
		}
		if e.Remote, err = parseAddrPort(f[2], v6); err != nil {
			return out, err
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return out, fmt.Errorf("parsing tcp table: state %q: %w", f[3], err)
		}
		e.State = uint8(st)
		tx, _, ok := strings.Cut(f[4], ":")
		if !ok {
			return out, fmt.Errorf("parsing tcp table: queues %q", f[4])
		}
		q, err := strconv.ParseUint(tx, 16, 32)
		if err != nil {
			return out, fmt.Errorf("parsing tcp table: tx_queue %q: %w", tx, err)
		}
		e.TxQueue = uint32(q)
		tr, _, ok := strings.Cut(f[5], ":")
		if !ok {
			return out, fmt.Errorf("parsing tcp table: timer %q", f[5])
		}
		tm, err := strconv.ParseUint(tr, 16, 8)
		if err != nil {
			return out, fmt.Errorf("parsing tcp table: timer %q: %w", tr, err)
		}
		e.Timer = uint8(tm)
		if e.Inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
			return out, fmt.Errorf("parsing tcp table: inode %q: %w", f[9], err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("parsing tcp table: %w", err)
	}
	return out, nil
}

// parseAddrPort parses "0100007F:0277": the address as the kernel prints
// it (each 32-bit word of the network-order address as a host-order hex
// number, in native byte order), then the port in hex.
func parseAddrPort(s string, v6 bool) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	n := 8
	if v6 {
		n = 32
	}
	if !ok || len(a) != n {
		return netip.AddrPort{}, fmt.Errorf("parsing tcp table: address %q", s)
	}
	var b [16]byte
	for i := 0; i < n/8; i++ {
		w, err := strconv.ParseUint(a[8*i:8*i+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("parsing tcp table: address %q: %w", s, err)
		}
		binary.NativeEndian.PutUint32(b[4*i:], uint32(w))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("parsing tcp table: port %q: %w", s, err)
	}
	var addr netip.Addr
	if v6 {
		addr = netip.AddrFrom16(b)
	} else {
		addr = netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
