package netd

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vmux/vmux/diecast/netem"
)

// TUNName is the interface every node gets.
const TUNName = "vmux0"

// tunMTU keeps packets under netem's default MaxPacket and Ethernet-sized,
// like the links being modelled.
const tunMTU = 1500

// attachNode creates the node's TUN inside its network namespace and gives
// it the node's address (the subnet's prefix route comes with it), and
// brings lo and the TUN up. The TUN fd stays in the daemon (the emulator's
// endpoint); the interface lives in the node's netns.
func attachNode(nsPath string, addr netip.Prefix) (*netem.TUN, error) {
	tun, err := netem.OpenTUNInNetns(nsPath, TUNName)
	if err != nil {
		return nil, err
	}
	if err := configure(nsPath, addr); err != nil {
		tun.Close()
		return nil, err
	}
	return tun, nil
}

func configure(nsPath string, addr netip.Prefix) error {
	f, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer f.Close()
	h, err := netlink.NewHandleAt(netns.NsHandle(int(f.Fd())))
	if err != nil {
		return fmt.Errorf("netlink in node netns: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	link, err := h.LinkByName(TUNName)
	if err != nil {
		return fmt.Errorf("find %s: %w", TUNName, err)
	}
	if err := h.LinkSetMTU(link, tunMTU); err != nil {
		return fmt.Errorf("set %s mtu: %w", TUNName, err)
	}
	ipn := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipn}); err != nil {
		return fmt.Errorf("add address %s: %w", addr, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", TUNName, err)
	}
	return nil
}
