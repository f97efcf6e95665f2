package server

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmux/vmux/diecast/diskmodel"
	"github.com/vmux/vmux/rt/clock"
	"github.com/vmux/vmux/rt/reexec"
)

func init() { reexec.Register(diskmodel.Role, roleMain) }

func roleMain(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("role", diskmodel.Role)
	// The server lives as long as its mount: the node's signals are for
	// its programs, and the server ends with the node's pid namespace.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	a, err := diskmodel.ParseArgs(args)
	if err != nil {
		log.Error("disk model", "err", err)
		return 2
	}
	c := Config{Dev: os.NewFile(diskmodel.FuseFd, "fuse"), Dir: os.NewFile(diskmodel.DirFd, "backing"), Model: a.Model,
		Mount: a.Mount, Ready: os.NewFile(diskmodel.ReadyFd, "ready"), Log: log}
	if a.Clock {
		f := os.NewFile(diskmodel.ClockFd, "clock")
		v, err := clock.Open(f) // its own read-only descriptor and mapping
		f.Close()
		if err != nil {
			log.Error("disk model", "err", err)
			return 2
		}
		defer v.Close()
		c.Time = diskmodel.NewClockTime(v)
	}
	st, err := ServeConfig(c)
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
