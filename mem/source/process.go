package source

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/vmux/vmux/internal/linux"
)

// Process reads a live process's memory with process_vm_readv, ChunkSize
// bytes per call, over the mappings /proc/PID/maps lists when the scan starts.
type Process struct {
	pid        int
	name       string
	uid        int
	fileBacked bool
	regions    []Region
	skipped    []Skip
	buf        []byte
	tgid       int      // the thread group (process) pid belongs to
	tgStart    uint64   // the thread group leader's start time
	start      uint64   // start time (clock ticks after boot): tells this process from a later one with its PID
	pagemap    *os.File // nil if it cannot be opened: then every page is read
	pmBuf      []byte
	pmAddr     uint64 // address of the first entry held in pmBuf
	pmN        uint64 // entries held
}

// OpenProcess prepares to read process pid. It checks early that the process
// exists and that the caller may read it.
func OpenProcess(pid int, fileBacked bool) (*Process, error) {
	p := &Process{pid: pid, fileBacked: fileBacked, name: fmt.Sprintf("pid:%d", pid)}
	st, err := procOwner(pid)
	if err != nil {
		return nil, &Error{Source: p.name, Op: "open", Err: err}
	}
	uid, comm := st.uid, st.comm
	if st.kthread {
		return nil, &Error{Source: fmt.Sprintf("pid:%d(%s)", pid, comm), Op: "open", Err: ErrKernelThread}
	}
	p.uid, p.tgid = uid, st.tgid
	if p.start, err = procStart(pid); err != nil {
		return nil, &Error{Source: p.name, Op: "open", Err: err}
	}
	p.tgStart = p.start
	if p.tgid != pid {
		if p.tgStart, err = procStart(p.tgid); err != nil {
			return nil, &Error{Source: p.name, Op: "open", Err: err}
		}
	}
	if comm != "" {
		p.name = fmt.Sprintf("pid:%d(%s)", pid, comm)
	}
	if os.Geteuid() != 0 && os.Geteuid() != uid {
		return nil, &Error{Source: p.name, Op: "open", Err: ErrNoPermission}
	}
	return p, nil
}

// procStatus is what OpenProcess needs from /proc/PID/status.
type procStatus struct {
	uid, tgid int
	comm      string
	kthread   bool
}

// procOwner reads the real uid, command name and thread group from
// /proc/PID/status, and whether PID is a kernel thread ("Kthread: 1"; on
// kernels before that line, a live task without any Vm line).
func procOwner(pid int) (procStatus, error) {
	st := procStatus{uid: -1}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if errors.Is(err, fs.ErrNotExist) {
		return st, ErrProcessGone
	}
	if err != nil {
		return st, err
	}
	defer f.Close()
	haveKthread, haveVM, zombie := false, false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		v = strings.TrimSpace(v)
		switch {
		case k == "Name":
			st.comm = v
		case k == "Uid":
			if fs := strings.Fields(v); len(fs) > 0 {
				st.uid, _ = strconv.Atoi(fs[0])
			}
		case k == "Tgid":
			st.tgid, _ = strconv.Atoi(v)
		case k == "State":
			zombie = strings.HasPrefix(v, "Z") || strings.HasPrefix(v, "X")
		case k == "Kthread":
			haveKthread, st.kthread = true, v == "1"
		case strings.HasPrefix(k, "Vm"):
			haveVM = true
		}
	}
	if st.uid < 0 {
		return st, fmt.Errorf("no Uid in /proc/%d/status: %w", pid, ErrProcessGone)
	}
	if !haveKthread && !haveVM && !zombie {
		st.kthread = true
	}
	if st.tgid == 0 {
		st.tgid = pid
	}
	return st, nil
}

// PID is the process read.
func (p *Process) PID() int { return p.pid }

func (p *Process) Name() string      { return p.name }
func (p *Process) Kind() Kind        { return KindProcess }
func (p *Process) Domain() string    { return "uid:" + strconv.Itoa(p.uid) }
func (p *Process) Regions() []Region { return p.regions }
func (p *Process) Skipped() []Skip   { return p.skipped }
func (p *Process) FileSize() int64   { return 0 }
func (p *Process) Residue() []Extent { return nil }
func (p *Process) Close() error      { return nil }
func (p *Process) identity() Identity {
	return Identity{Process: [2]uint64{uint64(p.tgid), p.tgStart}}
}

// Scan reads every selected mapping. A process that exits before or during the
// scan is an error wrapping ErrProcessGone (never a short, silent result);
// pages that cannot be read inside a mapping end the region there, are
// recorded in Skipped, and the scan goes on after them.
func (p *Process) Scan(sink Sink) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", p.pid))
	if errors.Is(err, fs.ErrNotExist) {
		err = ErrProcessGone
	}
	if err != nil {
		return &Error{Source: p.name, Op: "read maps of", Err: err}
	}
	maps, err := ParseMaps(f)
	f.Close()
	if err != nil {
		return &Error{Source: p.name, Op: "read maps of", Err: err}
	}
	if len(maps) == 0 {
		// A zombie or exiting process has no maps left.
		return &Error{Source: p.name, Op: "read maps of", Err: ErrProcessGone}
	}
	p.buf = make([]byte, ChunkSize)
	defer func() { p.buf = nil }()
	if pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", p.pid)); err == nil {
		p.pagemap = pm
		p.pmBuf = make([]byte, ChunkSize/PageSize*8)
		defer func() { pm.Close(); p.pagemap, p.pmBuf = nil, nil }()
	}
	if err := p.same(); err != nil {
		return err
	}
	for _, m := range maps {
		ok, why := selectMapping(m, p.fileBacked)
		if !ok {
			if why != "" {
				p.skipped = append(p.skipped, Skip{Start: m.Start, Len: m.End - m.Start, Name: m.Path, Reason: why})
			}
			continue
		}
		if err := p.scanMapping(m, sink); err != nil {
			return err
		}
	}
	// Pages known absent from a cached pagemap window are not read, so a
	// process that died late in the scan might not have made a read fail:
	// check it is still there (and still the same process).
	return p.same()
}

// same fails with ErrProcessGone unless the process that was opened still
// runs under its PID.
func (p *Process) same() error {
	st, err := procStart(p.pid)
	if err == nil && st != p.start {
		err = fmt.Errorf("PID %d now belongs to another process: %w", p.pid, ErrProcessGone)
	}
	if err != nil {
		return &Error{Source: p.name, Op: "read", Err: err}
	}
	return nil
}

// procStart reads a process's start time (field 22 of /proc/PID/stat). A
// zombie has no memory left: it counts as gone.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, fs.ErrNotExist) || linux.IsProcessGone(err) {
		return 0, ErrProcessGone
	}
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, ErrCorrupt)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, ErrProcessGone
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func (p *Process) scanMapping(m Mapping, sink Sink) error {
	addr := m.Start
	open := false // a region is started and addr continues it
	for addr < m.End {
		n := min(m.End-addr, uint64(len(p.buf)))
		// Anonymous pages never touched are not present and read as zero:
		// report them as zeros without reading (or faulting them in).
		if m.Anonymous() && p.pagemap != nil {
			if absent := p.absentPages(addr, n); absent > 0 {
				if !open {
					if err := p.startRegion(m, addr, sink); err != nil {
						return err
					}
					open = true
				}
				if err := sink.Zeros(absent); err != nil {
					return err
				}
				p.regions[len(p.regions)-1].Len += absent * PageSize
				addr += absent * PageSize
				continue
			}
			n = p.presentRun(addr, n)
		}
		got, err := linux.ReadProcessMemory(p.pid, addr, p.buf[:n])
		got -= got % PageSize
		if got > 0 {
			if !open {
				if err := p.startRegion(m, addr, sink); err != nil {
					return err
				}
				open = true
			}
			if err := sink.Pages(p.buf[:got]); err != nil {
				return err
			}
			p.regions[len(p.regions)-1].Len += uint64(got)
			addr += uint64(got)
			continue
		}
		switch {
		case err != nil && linux.IsProcessGone(err):
			return &Error{Source: p.name, Op: "read", Err: fmt.Errorf("at %#x: %w (%w)", addr, ErrProcessGone, err)}
		case err != nil && errors.Is(err, os.ErrPermission):
			return &Error{Source: p.name, Op: "read", Err: fmt.Errorf("%w (%w)", ErrNoPermission, err)}
		case err != nil && !linux.IsUnreadable(err):
			return &Error{Source: p.name, Op: "read", Err: fmt.Errorf("at %#x: %w", addr, err)}
		}
		// This page cannot be read (EFAULT, EIO, or a short count at it):
		// skip it, report it, and start a new region after it.
		open = false
		p.addSkip(addr, m.Path, "page not readable")
		addr += PageSize
	}
	return nil
}

func (p *Process) startRegion(m Mapping, addr uint64, sink Sink) error {
	p.regions = append(p.regions, Region{Name: m.Path, Start: addr, Perms: m.Perms})
	return sink.Region(Region{Name: m.Path, Start: addr, Len: m.End - addr, Perms: m.Perms})
}

func (p *Process) addSkip(addr uint64, name, why string) {
	if n := len(p.skipped); n > 0 {
		last := &p.skipped[n-1]
		if last.Start+last.Len == addr && last.Reason == why {
			last.Len += PageSize
			return
		}
	}
	p.skipped = append(p.skipped, Skip{Start: addr, Len: PageSize, Name: name, Reason: why})
}
