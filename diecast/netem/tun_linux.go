package netem

import (
	"errors"
	"fmt"
	"os"
	"sync"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/vmux/vmux/internal/linux"
)

// headroom is the space kept in front of every packet buffer: the
// offloading TUN writes its 10-byte virtio-net header there.
const headroom = 16

// TUN is an Endpoint over a Linux TUN device. In plain mode
// (IFF_TUN|IFF_NO_PI) every read or write is one IP packet. In offload
// mode (IFF_VNET_HDR with TSO/USO, through wireguard-go's tun package) the
// kernel hands over TCP/UDP super-packets of up to 64 KiB that are split
// here into MTU-sized packets, and packets written together to one node
// are coalesced back (GRO): the link model still sees every MTU-sized
// packet, while the system calls per packet drop by up to ~40x. The MTU
// must stay <= 2048 - 16 bytes in offload mode. Its fd is non-blocking and
// polled by Go's runtime, so Close unblocks Read.
type TUN struct {
	name string
	file *os.File     // plain mode
	dev  wgtun.Device // offload mode

	// rmu guards the packets of the last batch read, handed out one per
	// Read in offload mode.
	rmu    sync.Mutex
	rbufs  [][]byte
	rsizes []int
	rnext  int
	rcount int

	wmu  sync.Mutex // guards wbuf, for Write in offload mode
	wbuf []byte
}

// TUNOptions choose how a TUN endpoint is opened.
type TUNOptions struct {
	// NoOffload opens the plain mode (one packet per system call) even
	// where offloads are available.
	NoOffload bool
}

// OpenTUN creates the TUN interface name (a "%d" pattern or "" lets the
// kernel choose) in the calling thread's network namespace, in plain mode.
func OpenTUN(name string) (*TUN, error) {
	f, ifname, err := linux.OpenTUNPolled(name)
	if err != nil {
		return nil, fmt.Errorf("opening TUN endpoint: %w", err)
	}
	return &TUN{file: f, name: ifname}, nil
}

// OpenTUNInNetns creates the TUN interface name inside the network
// namespace at nsPath (/run/netns/X or /proc/PID/ns/net), in offload mode
// where the kernel supports it, else in plain mode.
func OpenTUNInNetns(nsPath, name string) (*TUN, error) {
	return OpenTUNInNetnsWith(nsPath, name, TUNOptions{})
}

// OpenTUNInNetnsWith is OpenTUNInNetns with options.
func OpenTUNInNetnsWith(nsPath, name string, o TUNOptions) (*TUN, error) {
	if !o.NoOffload {
		fd, ifname, err := linux.OpenTUNVnetInNetns(nsPath, name)
		if err != nil {
			return nil, fmt.Errorf("opening TUN endpoint in %s: %w", nsPath, err)
		}
		dev, _, err := wgtun.CreateUnmonitoredTUNFromFD(fd)
		if err == nil {
			return newOffloadTUN(dev, ifname), nil
		}
		// No offloads: close it (the interface goes with its fd) and
		// fall back to plain mode.
		os.NewFile(uintptr(fd), "/dev/net/tun").Close()
	}
	f, ifname, err := linux.OpenTUNPolledInNetns(nsPath, name)
	if err != nil {
		return nil, fmt.Errorf("opening TUN endpoint in %s: %w", nsPath, err)
	}
	return &TUN{file: f, name: ifname}, nil
}

func newOffloadTUN(dev wgtun.Device, name string) *TUN {
	t := &TUN{dev: dev, name: name, wbuf: make([]byte, headroom+65536)}
	t.rbufs, t.rsizes = readBufs(dev.BatchSize())
	return t
}

// readBufs allocates n read buffers: the first large enough for any
// packet, the others for one MTU-sized segment each.
func readBufs(n int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	bufs[0] = make([]byte, 65536)
	for i := 1; i < n; i++ {
		bufs[i] = make([]byte, smallBuf)
	}
	return bufs, make([]int, n)
}

// NewTUN wraps a plain-mode TUN file opened elsewhere (for instance inside
// a node's namespace and passed over a socket). It checks the mode with
// TUNGETIFF (linux.ErrNotTUN unless IFF_TUN|IFF_NO_PI without
// IFF_VNET_HDR) and takes ownership of f: f is replaced by a non-blocking
// duplicate.
func NewTUN(f *os.File) (*TUN, error) {
	name, _, err := linux.TUNInfo(f)
	if err != nil {
		return nil, fmt.Errorf("wrapping TUN endpoint: %w", err)
	}
	pf, err := linux.PollableTUN(f)
	if err != nil {
		return nil, fmt.Errorf("wrapping TUN endpoint %s: %w", name, err)
	}
	return &TUN{file: pf, name: name}, nil
}

// Name is the interface name.
func (t *TUN) Name() string { return t.name }

// Offload reports whether the TUN runs in offload mode.
func (t *TUN) Offload() bool { return t.dev != nil }

// Read returns one IP packet the node sent.
func (t *TUN) Read(p []byte) (int, error) {
	if t.dev == nil {
		return t.file.Read(p)
	}
	t.rmu.Lock()
	defer t.rmu.Unlock()
	for t.rnext >= t.rcount {
		n, err := t.dev.Read(t.rbufs, t.rsizes, 0)
		if err != nil {
			return 0, err
		}
		t.rnext, t.rcount = 0, n
	}
	i := t.rnext
	t.rnext++
	return copy(p, t.rbufs[i][:t.rsizes[i]]), nil
}

// Write hands the node one IP packet.
func (t *TUN) Write(p []byte) (int, error) {
	if t.dev == nil {
		return t.file.Write(p)
	}
	if len(p) > len(t.wbuf)-headroom {
		return 0, fmt.Errorf("writing %d-byte packet to %s: too large", len(p), t.name)
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	n := copy(t.wbuf[headroom:], p)
	if _, err := t.dev.Write([][]byte{t.wbuf[:headroom+n]}, headroom); err != nil {
		return 0, err
	}
	return n, nil
}

// Close closes the device; its interface disappears with the last fd.
func (t *TUN) Close() error {
	var err error
	if t.dev != nil {
		err = t.dev.Close()
	} else {
		err = t.file.Close()
	}
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// batchSize is how many packets one readBatch may return.
func (t *TUN) batchSize() int {
	if t.dev == nil {
		return 1
	}
	return t.dev.BatchSize()
}

// readBatch reads one or more packets into bufs (offload mode only).
func (t *TUN) readBatch(bufs [][]byte, sizes []int) (int, error) {
	return t.dev.Read(bufs, sizes, 0)
}

// writeBatch writes packets that start offset bytes into each buffer,
// coalescing them where it can; buffers need spare capacity for that.
func (t *TUN) writeBatch(bufs [][]byte, offset int) (int, error) {
	return t.dev.Write(bufs, offset)
}

// batcher is implemented by endpoints that move several packets per
// system call (the offloading TUN).
type batcher interface {
	batchSize() int
	readBatch(bufs [][]byte, sizes []int) (int, error)
	writeBatch(bufs [][]byte, offset int) (int, error)
}

var (
	_ Endpoint = (*TUN)(nil)
	_ batcher  = (*TUN)(nil)
)
