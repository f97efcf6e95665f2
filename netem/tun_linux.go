package netem

import (
	"fmt"
	"os"

	"github.com/vmux/vmux/internal/linux"
)

// TUN is an Endpoint over a Linux TUN device in IFF_TUN|IFF_NO_PI mode
// (one bare IP packet per read or write, no offloads). Its fd is
// non-blocking and polled by Go's runtime, so Close unblocks Read.
type TUN struct {
	*os.File
	name string
}

// OpenTUN creates the TUN interface name (a "%d" pattern or "" lets the
// kernel choose) in the calling thread's network namespace.
func OpenTUN(name string) (*TUN, error) {
	f, ifname, err := linux.OpenTUNPolled(name)
	if err != nil {
		return nil, fmt.Errorf("opening TUN endpoint: %w", err)
	}
	return &TUN{File: f, name: ifname}, nil
}

// OpenTUNInNetns creates the TUN interface name inside the network
// namespace at nsPath (/run/netns/X or /proc/PID/ns/net).
func OpenTUNInNetns(nsPath, name string) (*TUN, error) {
	f, ifname, err := linux.OpenTUNPolledInNetns(nsPath, name)
	if err != nil {
		return nil, fmt.Errorf("opening TUN endpoint in %s: %w", nsPath, err)
	}
	return &TUN{File: f, name: ifname}, nil
}

// NewTUN wraps a TUN file opened elsewhere (for instance inside a node's
// namespace and passed over a socket). It checks the mode with TUNGETIFF
// (linux.ErrNotTUN if it is not IFF_TUN|IFF_NO_PI without IFF_VNET_HDR)
// and takes ownership of f: f is replaced by a non-blocking duplicate.
func NewTUN(f *os.File) (*TUN, error) {
	name, _, err := linux.TUNInfo(f)
	if err != nil {
		return nil, fmt.Errorf("wrapping TUN endpoint: %w", err)
	}
	pf, err := linux.PollableTUN(f)
	if err != nil {
		return nil, fmt.Errorf("wrapping TUN endpoint %s: %w", name, err)
	}
	return &TUN{File: pf, name: name}, nil
}

// Name is the interface name.
func (t *TUN) Name() string { return t.name }

var _ Endpoint = (*TUN)(nil)
