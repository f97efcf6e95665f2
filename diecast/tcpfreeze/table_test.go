package tcpfreeze

import (
	"net/netip"
	"strings"
	"testing"
)

// Lines as 6.18 prints them (ss -tn shows the same sockets).
const tcp4Sample = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21516 1 0000000000000000 100 0 0 10 0
   1: 0100FA0A:A2E6 0200FA0A:14E9 01 0000A000:00000000 01:00000015 00000000     0        0 40132 1 0000000000000000 20 4 28 10 -1
   2: 0100FA0A:A2E8 0200FA0A:14E9 01 00000000:00000000 00:00000000 00000000     0        0 40133 1 0000000000000000 20 4 30 10 -1
   3: 0100FA0A:A2EA 0200FA0A:14E9 04 00000001:00000000 01:00000010 00000000     0        0 0 3 0000000000000000 20 4 30 10 -1
   4: 0100007F:9C40 0100007F:1F90 01 00010000:00000000 04:00000100 00000000     0        0 40140 1 0000000000000000 20 4 30 10 -1
`

const tcp6Sample = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100FA0A:A2F0 0000000000000000FFFF00000200FA0A:14E9 02 00000001:00000000 01:00000064 00000000     0        0 40150 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:A000 01 00000010:00000000 01:00000010 00000000     0        0 40151 1 0000000000000000 20 4 30 10 -1
`

func TestParseTable(t *testing.T) {
	es, err := parseTable(strings.NewReader(tcp4Sample), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 5 {
		t.Fatalf("%d entries", len(es))
	}
	e := es[1]
	if e.Local != netip.MustParseAddrPort("10.250.0.1:41702") || e.Remote != netip.MustParseAddrPort("10.250.0.2:5353") ||
		e.State != stateEstablished || e.TxQueue != 0xa000 || e.Timer != timerRetrans || e.Inode != 40132 {
		t.Errorf("entry 1: %+v", e)
	}
	var held []int
	for i, e := range es {
		if e.inFlight() && e.throughEmulator() {
			held = append(held, i)
		}
	}
	// 0 listens, 2 is idle, 3 is an orphan in FIN_WAIT1 (in flight, but no
	// inode: Freeze counts it unreachable), 4 is loopback.
	if len(held) != 2 || held[0] != 1 || held[1] != 3 {
		t.Errorf("in flight through the emulator: %v, want [1 3]", held)
	}
	es, err = parseTable(strings.NewReader(tcp6Sample), true)
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Local != netip.MustParseAddrPort("[::ffff:10.250.0.1]:41712") || es[0].State != stateSynSent {
		t.Errorf("v6 entry 0: %+v", es[0])
	}
	if !es[0].inFlight() || !es[0].throughEmulator() {
		t.Errorf("a v4-mapped SYN_SENT socket to another node must be held: %+v", es[0])
	}
	if es[1].Remote.Addr() != netip.IPv6Loopback() || es[1].throughEmulator() {
		t.Errorf("v6 loopback: %+v", es[1])
	}
}

func TestParseTableErrors(t *testing.T) {
	for _, bad := range []string{
		"hdr\n 0: 0100007F:1F90 00000000:0000 0A\n",
		"hdr\n 0: 0100007Z:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n",
		"hdr\n 0: 0100007F:1F90 00000000:0000 0A 00000000 00:00000000 00000000 0 0 1\n",
		"hdr\n 0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 x\n",
	} {
		if _, err := parseTable(strings.NewReader(bad), false); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseInUse(t *testing.T) {
	const s = "sockets: used 3\nTCP: inuse 2 orphan 848 tw 0 alloc 849 mem 799\nUDP: inuse 0 mem 0\n"
	if n, err := parseInUse(s, "TCP:"); n != 2 || err != nil {
		t.Errorf("TCP: %d %v", n, err)
	}
	if n, err := parseInUse("TCP6: inuse 0\n", "TCP6:"); n != 0 || err != nil {
		t.Errorf("TCP6: %d %v", n, err)
	}
	if _, err := parseInUse(s, "TCP6:"); err == nil {
		t.Error("missing line parsed")
	}
}
