//go:build linux

package tcprto

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// Kernel constants (include/uapi/linux/bpf.h, include/net/tcp.h).
const (
	sockOpsTimeoutInit = 1 // BPF_SOCK_OPS_TIMEOUT_INIT
	offOp              = 0 // struct bpf_sock_ops: __u32 op
	offReply           = 4 // union { args[4]; reply; replylong[4] }
	// InitialRTO is the kernel's TCP_TIMEOUT_INIT.
	InitialRTO = time.Second
	// maxRTO is TCP_RTO_MAX: the kernel caps the program's answer there.
	maxRTO = 120 * time.Second
)

// Scaler is a loaded sock_ops program that sets the initial RTO of the
// sockets of the cgroups it is attached to. Safe for concurrent use.
type Scaler struct {
	hz    int
	m     *ebpf.Map
	prog  *ebpf.Program
	mu    sync.Mutex
	links map[string]link.Link
	rto   time.Duration
}

// New loads the program with the initial RTO at k x InitialRTO.
func New(k float64) (*Scaler, error) {
	hz, err := kernelHZ()
	if err != nil {
		return nil, err
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "vmux_rto", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("tcprto: create map: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "vmux_rto", Type: ebpf.SockOps, License: "GPL", Instructions: program(m.FD()),
	})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("tcprto: load program: %w", err)
	}
	s := &Scaler{hz: hz, m: m, prog: prog, links: map[string]link.Link{}}
	if err := s.Set(k); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// program answers BPF_SOCK_OPS_TIMEOUT_INIT with the map's value (jiffies)
// and leaves every other operation alone; it always returns 1 (go on).
func program(mapFD int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R1, offOp, asm.Word),
		asm.JNE.Imm(asm.R2, sockOpsTimeoutInit, "out"),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.R6, offReply, asm.R1, asm.Word),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("out"),
		asm.Return(),
	}
}

// Set makes the initial RTO of sockets created from now on k x InitialRTO
// (at most the kernel's 120 s) in every attached cgroup.
func (s *Scaler) Set(k float64) error {
	if !(k > 0) || math.IsInf(k, 0) {
		return fmt.Errorf("%w: %v", ErrBadFactor, k)
	}
	rto := min(time.Duration(k*float64(InitialRTO)), maxRTO)
	j := uint32(max(1, math.Round(rto.Seconds()*float64(s.hz))))
	if err := s.m.Put(uint32(0), j); err != nil {
		return fmt.Errorf("tcprto: set initial RTO: %w", err)
	}
	s.mu.Lock()
	s.rto = time.Duration(float64(j) / float64(s.hz) * float64(time.Second))
	s.mu.Unlock()
	return nil
}

// RTO is the initial RTO the program sets now (in whole jiffies).
func (s *Scaler) RTO() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rto
}

// Attach puts the program on the cgroup v2 directory dir; attaching the
// same directory twice is one attachment.
func (s *Scaler) Attach(dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.links[dir]; ok {
		return nil
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: dir, Attach: ebpf.AttachCGroupSockOps, Program: s.prog})
	if err != nil {
		return fmt.Errorf("tcprto: attach to %s: %w", dir, err)
	}
	s.links[dir] = l
	return nil
}

// Close detaches the program from every cgroup and unloads it.
func (s *Scaler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for dir, l := range s.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("tcprto: detach from %s: %w", dir, err))
		}
		delete(s.links, dir)
	}
	if s.prog != nil {
		s.prog.Close()
	}
	if s.m != nil {
		s.m.Close()
	}
	return errors.Join(errs...)
}

// kernelHZ is CONFIG_HZ: from the kernel's own configuration
// (/proc/config.gz, else /boot/config-RELEASE), else measured from the
// jiffies counter in /proc/timer_list over 200 ms.
func kernelHZ() (int, error) {
	if hz, ok := hzFromConfig(); ok {
		return hz, nil
	}
	j0, err := jiffies()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoHZ, err)
	}
	t0 := time.Now()
	time.Sleep(200 * time.Millisecond)
	j1, err := jiffies()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoHZ, err)
	}
	rate := float64(j1-j0) / time.Since(t0).Seconds()
	for _, hz := range []int{100, 250, 300, 1000} {
		if math.Abs(rate-float64(hz)) < float64(hz)/10 {
			return hz, nil
		}
	}
	return 0, fmt.Errorf("%w: jiffies advance %.0f a second", ErrNoHZ, rate)
}

// maxConfig bounds the kernel configuration read (decompressed).
const maxConfig = 4 << 20

func hzFromConfig() (int, bool) {
	var r io.Reader
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		zr, err := gzip.NewReader(io.LimitReader(f, maxConfig))
		if err != nil {
			return 0, false
		}
		r = zr
	} else {
		b, err := os.ReadFile("/proc/sys/kernel/osrelease")
		if err != nil {
			return 0, false
		}
		f, err := os.Open("/boot/config-" + strings.TrimSpace(string(b)))
		if err != nil {
			return 0, false
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxConfig))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ="); ok {
			hz, err := strconv.Atoi(v)
			return hz, err == nil && hz > 0
		}
	}
	return 0, false
}

// jiffies reads the kernel's jiffies counter from /proc/timer_list.
func jiffies() (uint64, error) {
	f, err := os.Open("/proc/timer_list")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "jiffies:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no jiffies line in /proc/timer_list")
}
