package diskmodel

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/vmux/vmux/rt/reexec"
)

// Role is the reexec role of a disk model server: argv is the factor and
// the lead (ns); descriptor 3 is the mounted FUSE connection, 4 the
// backing directory; it logs to stderr.
const Role = "disk-model"

// Descriptors of the role.
const (
	FuseFd = 3
	DirFd  = 4
)

func init() { reexec.Register(Role, roleMain) }

// Args are the role's arguments for m.
func Args(m Model) []string {
	return []string{strconv.FormatFloat(m.Factor, 'g', -1, 64), strconv.FormatInt(int64(m.Lead), 10)}
}

func parseArgs(args []string) (Model, error) {
	if len(args) != 2 {
		return Model{}, fmt.Errorf("%w: want FACTOR LEAD_NS, got %d arguments", ErrBadArgs, len(args))
	}
	k, err := strconv.ParseFloat(args[0], 64)
	if err != nil {
		return Model{}, fmt.Errorf("%w: factor %q", ErrBadArgs, args[0])
	}
	lead, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		return Model{}, fmt.Errorf("%w: lead %q", ErrBadArgs, args[1])
	}
	m := Model{Factor: k, Lead: time.Duration(lead)}
	return m, m.Validate()
}

func roleMain(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("role", Role)
	// The server lives as long as its mount: the node's signals are for
	// its programs, and the server ends with the node's pid namespace.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	m, err := parseArgs(args)
	if err != nil {
		log.Error("disk model", "err", err)
		return 2
	}
	st, err := Serve(os.NewFile(FuseFd, "fuse"), os.NewFile(DirFd, "backing"), m, log)
	if err != nil {
		log.Error("disk model", "err", err)
		return 1
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	log.Info("disk model done", "ops", st.Ops, "service", st.Service, "hold", st.Hold, "cpu", cpu)
	return 0
}
