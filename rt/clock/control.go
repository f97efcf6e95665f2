package clock

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/rt/vclock"
)

// SocketPrefix names every clock's control socket in the abstract unix
// namespace: "@vmux-clock-NAME".
const SocketPrefix = "vmux-clock-"

// Control limits: one request per connection, bounded in size, time and
// number of connections served at once.
const (
	maxMsg      = 4 << 10
	ioTimeout   = 5 * time.Second
	maxServing  = 16
	maxNameSize = 100
)

// Kind tells what a clock belongs to.
type Kind string

const (
	KindRun        Kind = "run"        // a `vmux run`
	KindExperiment Kind = "experiment" // a `vmux net up --dilate` experiment
)

// Request is one control request.
type Request struct {
	Op  string `json:"op"`            // "status", "set", "pause" or "resume"
	TDF string `json:"tdf,omitempty"` // for "set": the new factor (ParseTDF syntax)
}

// Status is a clock's state, as the owner answers every request.
type Status struct {
	Name   string `json:"name"`
	Kind   Kind   `json:"kind"`
	Pid    int    `json:"pid"` // the owner
	TDF    string `json:"tdf"`
	Paused bool   `json:"paused"`
	Share  string `json:"cpu_share"`
	// VirtRealtime and VirtMonotonic are the virtual readings, and
	// RealRealtime the real one, at the time of the answer (ns).
	VirtRealtime  int64  `json:"virtual_realtime_ns"`
	VirtMonotonic int64  `json:"virtual_monotonic_ns"`
	RealRealtime  int64  `json:"real_realtime_ns"`
	Error         string `json:"error,omitempty"`
}

// Factor parses the factor of s.
func (s Status) Factor() (vclock.TDF, error) { return vclock.ParseTDF(s.TDF) }

// ValidName checks a clock name: 1-100 letters, digits, '-', '_' or '.'.
func ValidName(name string) error {
	if name == "" || len(name) > maxNameSize {
		return fmt.Errorf("clock name %q: %w: use 1-%d characters", name, ErrProtocol, maxNameSize)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("clock name %q: %w: use letters, digits, '-', '_' or '.'", name, ErrProtocol)
		}
	}
	return nil
}

// ServeOptions describe a clock's control socket.
type ServeOptions struct {
	Name   string // the name `vmux clock` finds the clock by (required)
	Kind   Kind
	Logger *slog.Logger
	// OnChange, if set, is called after every change the socket made
	// (with the new parameters), e.g. to wake readers at once.
	OnChange func(vclock.Params)
	// BeforeChange, if set, is called before the socket changes the clock,
	// with the request's op ("set", "pause" or "resume") and the
	// parameters in force, e.g. to get ready for a pause before anyone
	// sees it (diecast/netd freezes TCP sockets there). The answer waits
	// for it. Changes through the socket are serialised: one request's
	// BeforeChange, change and OnChange all run before the next one's
	// BeforeChange.
	BeforeChange func(op string, cur vclock.Params)
}

// Server is a clock's control socket.
type Server struct {
	c    *Clock
	o    ServeOptions
	ln   *net.UnixListener
	sem  chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	// chg serialises the changes (hooks included) requests make.
	chg sync.Mutex
}

// Serve starts answering control requests for c on "@vmux-clock-NAME".
// A live clock of the same name makes it fail with ErrNameInUse.
func Serve(c *Clock, o ServeOptions) (*Server, error) {
	if err := ValidName(o.Name); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: "@" + SocketPrefix + o.Name, Net: "unixpacket"})
	if err != nil {
		if errors.Is(err, syscallAddrInUse) {
			return nil, fmt.Errorf("serving clock %s: %w", o.Name, ErrNameInUse)
		}
		return nil, fmt.Errorf("serving clock %s: %w", o.Name, err)
	}
	s := &Server{c: c, o: o, ln: ln, sem: make(chan struct{}, maxServing)}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Close stops serving and waits for requests being answered.
func (s *Server) Close() error {
	s.once.Do(func() { s.ln.Close() })
	s.wg.Wait()
	return nil
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.o.Logger.Warn("clock control: accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			conn.Close() // too many at once: the caller retries
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			defer conn.Close()
			s.serve(conn)
		}()
	}
}

func (s *Server) serve(conn *net.UnixConn) {
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	st := s.answer(conn)
	b, _ := json.Marshal(st)
	if _, err := conn.Write(b); err != nil {
		s.o.Logger.Debug("clock control: reply", "err", err)
	}
}

func (s *Server) answer(conn *net.UnixConn) Status {
	fail := func(err error) Status {
		st := s.status()
		st.Error = err.Error()
		return st
	}
	// Read the request first, so that a refused client reads the refusal
	// rather than a broken pipe.
	buf := make([]byte, maxMsg+1)
	n, rerr := conn.Read(buf)
	cred, err := linux.PeerCred(conn)
	if err != nil {
		return Status{Error: err.Error()}
	}
	if cred.Uid != 0 {
		return Status{Error: ErrNotPermitted.Error()}
	}
	if rerr != nil || n > maxMsg {
		return fail(fmt.Errorf("%w: unreadable request", ErrProtocol))
	}
	var req Request
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrProtocol, err))
	}
	if req.Op != "status" {
		if sup := dilatingTracer(cred.Pid); sup != 0 {
			return fail(fmt.Errorf("%w (traced by the supervisor pid %d): run the command outside the run", ErrInsideRun, sup))
		}
	}
	var p vclock.Params
	var k vclock.TDF
	switch req.Op {
	case "status":
		return s.status()
	case "set":
		if k, err = vclock.ParseTDF(req.TDF); err != nil {
			return fail(err)
		}
	case "pause", "resume":
	default:
		return fail(fmt.Errorf("%w: unknown op %q", ErrProtocol, req.Op))
	}
	s.chg.Lock()
	defer s.chg.Unlock()
	if s.o.BeforeChange != nil {
		if cur, err := s.c.Load(); err == nil {
			s.o.BeforeChange(req.Op, cur)
		}
	}
	switch req.Op {
	case "set":
		if p, err = s.c.SetTDF(k); err != nil {
			return fail(err)
		}
	case "pause":
		if p, err = s.c.Pause(); err != nil {
			return fail(err)
		}
	case "resume":
		if p, err = s.c.Resume(); err != nil {
			return fail(err)
		}
	}
	s.o.Logger.Info("clock changed", "clock", s.o.Name, "op", req.Op, "tdf", p.TDF.String(), "paused", p.Paused, "by", cred.Pid)
	if s.o.OnChange != nil {
		s.o.OnChange(p)
	}
	return s.status()
}

func (s *Server) status() Status {
	st := Status{Name: s.o.Name, Kind: s.o.Kind, Pid: os.Getpid()}
	p, err := s.c.Load()
	if err != nil {
		st.Error = err.Error()
		return st
	}
	now := RealSource{}.Now()
	st.TDF, st.Paused, st.Share = p.TDF.String(), p.Paused, p.Share.String()
	st.VirtRealtime = p.Virt(vclock.Realtime, now[vclock.Realtime])
	st.VirtMonotonic = p.Virt(vclock.Monotonic, now[vclock.Monotonic])
	st.RealRealtime = now[vclock.Realtime]
	return st
}

// dilatingTracer returns the pid of the vmux supervisor tracing pid (a
// tracer that holds a clock memfd), or 0.
func dilatingTracer(pid int) int {
	tracer, err := linux.TracerPid(pid)
	if err != nil || tracer == 0 {
		return 0
	}
	if holdsClock(tracer) {
		return tracer
	}
	return 0
}

// holdsClock reports whether process pid holds a clock memfd.
func holdsClock(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if name, ok := linux.MemfdName(link); ok && (name == MemfdName || strings.HasPrefix(name, MemfdName+":")) {
			return true
		}
	}
	return false
}

// Ask sends req to the clock called name and returns its answer. A clock
// that answers with an error gives both the status and the error.
func Ask(name string, req Request) (Status, error) {
	if err := ValidName(name); err != nil {
		return Status{}, err
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: "@" + SocketPrefix + name, Net: "unixpacket"})
	if err != nil {
		return Status{}, fmt.Errorf("reaching clock %s: %w (see `vmux clock list`)", name, ErrNoClock)
	}
	defer conn.Close()
	cred, err := linux.PeerCred(conn)
	if err != nil {
		return Status{}, fmt.Errorf("reaching clock %s: %w", name, err)
	}
	if cred.Uid != 0 {
		return Status{}, fmt.Errorf("reaching clock %s: %w: its socket is held by uid %d, not root", name, ErrNotPermitted, cred.Uid)
	}
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	b, _ := json.Marshal(req)
	if _, err := conn.Write(b); err != nil {
		return Status{}, fmt.Errorf("asking clock %s: %w", name, err)
	}
	buf := make([]byte, maxMsg+1)
	n, err := conn.Read(buf)
	if err != nil || n > maxMsg {
		return Status{}, fmt.Errorf("asking clock %s: %w: no answer", name, ErrProtocol)
	}
	var st Status
	if err := json.Unmarshal(buf[:n], &st); err != nil {
		return Status{}, fmt.Errorf("asking clock %s: %w: %v", name, ErrProtocol, err)
	}
	if st.Error != "" {
		return st, &RemoteError{Clock: name, Msg: st.Error}
	}
	return st, nil
}

// RemoteError is an error a clock's owner answered with.
type RemoteError struct {
	Clock string
	Msg   string
}

func (e *RemoteError) Error() string { return "clock " + e.Clock + ": " + e.Msg }

// Is lets errors.Is match the sentinels the owner's message names.
func (e *RemoteError) Is(target error) bool {
	for _, s := range []error{ErrInsideRun, ErrNotPermitted, ErrProtocol, ErrClosed, ErrWriterStuck} {
		if target == s && strings.Contains(e.Msg, s.Error()) {
			return true
		}
	}
	return false
}
