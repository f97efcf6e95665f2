package live

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/vmux/vmux/internal/linux"
	"github.com/vmux/vmux/mem"
	"github.com/vmux/vmux/rt/reexec"
)

// EngineRole is the reexec role of the background engine that `vmux mem
// live` starts: it outlives the command, answers on the control socket,
// and gives every page back on SIGINT, SIGTERM or a stop request.
const EngineRole = "mem-live-engine"

func init() { reexec.Register(EngineRole, daemonMain) }

// Options start an engine.
type Options struct {
	Config
	// Recover takes over a dead engine's state instead of starting fresh.
	Recover bool
}

func (o *Options) args() []string {
	a := []string{"-dir", o.Dir, "-detector", o.Mem.Detector, "-codec", o.Mem.Codec,
		"-cold", o.Cold.String(), "-interval", o.Interval.String(), "-cpu", fmt.Sprint(o.CPU)}
	if o.Mem.CrossDomain {
		a = append(a, "-cross-domain")
	}
	if o.Recover {
		a = append(a, "-recover")
	}
	return a
}

func parseOptions(args []string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet(EngineRole, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Dir, "dir", DefaultDir, "")
	fs.StringVar(&o.Mem.Detector, "detector", "", "")
	fs.StringVar(&o.Mem.Codec, "codec", "", "")
	fs.BoolVar(&o.Mem.CrossDomain, "cross-domain", false, "")
	fs.DurationVar(&o.Cold, "cold", 0, "")
	fs.DurationVar(&o.Interval, "interval", 0, "")
	fs.Float64Var(&o.CPU, "cpu", 0, "")
	fs.BoolVar(&o.Recover, "recover", false, "")
	return o, fs.Parse(args)
}

// Run runs an engine until ctx ends or a stop request comes, then gives
// every page back. ready is called once it serves (nil error) or failed
// to start.
func Run(ctx context.Context, o Options, ready func(error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		e   *Engine
		err error
	)
	if o.Recover {
		e, err = Recover(o.Config)
	} else {
		e, err = New(o.Config)
	}
	if err != nil {
		ready(err)
		return err
	}
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, e, cancel) }()
	// the socket is up when a call answers
	for i := 0; i < 100; i++ {
		if _, err := Call(o.Dir, Request{Op: "status"}, time.Second); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ready(nil)
	<-ctx.Done()
	<-served
	return e.Stop() // once: a stop request has already run it
}

// daemonMain is the background engine: it logs to the state directory and
// reports readiness on stdout (the starting command reads one line).
func daemonMain(args []string) int {
	o, err := parseOptions(args)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 2
	}
	if err := os.MkdirAll(filepath.Dir(o.Dir), 0o755); err == nil {
		_ = os.Mkdir(o.Dir, 0o700)
	}
	logf, err := linux.OpenOwnerOnly(filepath.Join(o.Dir, logFile), true)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	logf.Seek(0, io.SeekEnd)
	// a crash's own output goes to the log too
	_ = linux.Dup2(int(logf.Fd()), 2)
	o.Log = slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: logLevel()}))
	// the engine's heap is part of the store's cost: collect garbage early
	debug.SetGCPercent(25)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	err = Run(ctx, o, func(err error) {
		if err != nil {
			fmt.Printf("error: %v\n", err)
		} else {
			fmt.Printf("ready %d\n", os.Getpid())
		}
		os.Stdout.Close()
	})
	if err != nil {
		o.Log.Error("engine", "err", err)
		return 1
	}
	o.Log.Info("stopped; every page given back")
	return 0
}

// Start starts a background engine and waits until it serves (or says
// why it cannot). It returns the engine's PID.
func Start(o Options) (int, error) {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Mem.Detector == "" {
		o.Mem.Detector = mem.DefaultDetector
	}
	if o.Mem.Codec == "" {
		o.Mem.Codec = mem.DefaultCodec
	}
	cmd := reexec.Command("", EngineRole, o.args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdin = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start the live engine: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(io.LimitReader(out, 4096)).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	var l string
	select {
	case l = <-line:
	case <-time.After(5 * time.Minute):
		cmd.Process.Signal(syscall.SIGTERM)
		l = "error: the engine did not become ready in 5 minutes"
	}
	if rest, ok := strings.CutPrefix(l, "ready "); ok {
		var pid int
		fmt.Sscan(rest, &pid)
		go cmd.Wait() // reaped if this process outlives it
		return pid, nil
	}
	cmd.Wait()
	if l == "" {
		l = "error: the engine exited (see " + filepath.Join(o.Dir, logFile) + ")"
	}
	return 0, errors.New("start the live engine: " + strings.TrimPrefix(l, "error: "))
}

func logLevel() slog.Level {
	if os.Getenv("VMUX_LIVE_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
