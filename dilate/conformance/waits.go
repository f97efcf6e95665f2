package conformance

import (
	"strconv"
	"strings"
)

// WaitPrograms returns, by name, python3 programs that each print
// "loaded", read a line from their standard input (a gate: several
// programs of a test start their waits together once all are loaded; at
// end of file at once), print "ready" and their CLOCK_MONOTONIC reading
// (ns), wait 100 ms of virtual time once with one kind of timer or
// timeout, and print "late" and how late (ns, virtual) they woke; negative
// is early (ParseWait reads it). They are the waits the suite checks
// across clock changes (a change of k or a pause while they are blocked),
// in one `vmux run` (rearm_test.go) or across the nodes of an experiment
// (diecast/netd).
func WaitPrograms() map[string]string {
	const prelude = "import ctypes, os, select, signal, sys, threading, time\n" +
		"class TS(ctypes.Structure): _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]\n" +
		"class ITS(ctypes.Structure): _fields_ = [('i', TS), ('v', TS)]\n" +
		"libc = ctypes.CDLL(None)\n" +
		"signal.signal(signal.SIGALRM, lambda *a: None)\n" +
		"def tfd(interval, value, n):\n" +
		"    fd = libc.timerfd_create(1, 0)\n" +
		"    libc.timerfd_settime(fd, 0, ctypes.byref(ITS(TS(0, interval), TS(0, value))), None)\n" +
		"    got = 0\n" +
		"    while got < n: got += int.from_bytes(os.read(fd, 8), 'little')\n" +
		"print('loaded', flush=True); sys.stdin.readline()\n" +
		"t = time.monotonic_ns(); print('ready', t, flush=True)\n"
	const report = "\nprint('late', time.monotonic_ns() - t - 100000000, flush=True)"
	waits := map[string]string{
		"nanosleep-relative":  "libc.nanosleep(ctypes.byref(TS(0, 100000000)), None)",
		"nanosleep-raw":       "libc.syscall(35, ctypes.byref(TS(0, 100000000)), None)",
		"clock_nanosleep-abs": "time.sleep(0.1)",
		"futex-abs":           "threading.Event().wait(0.1)",
		"select":              "select.select([], [], [], 0.1)",
		"poll":                "select.poll().poll(100)",
		"timerfd-oneshot":     "tfd(0, 100000000, 1)",
		"timerfd-periodic":    "tfd(25000000, 25000000, 4)",
		"setitimer":           "signal.setitimer(signal.ITIMER_REAL, 0.1); signal.pause()",
	}
	for k, w := range waits {
		waits[k] = prelude + w + report
	}
	return waits
}

// WaitOutput is what a wait program printed so far.
type WaitOutput struct {
	Loaded       bool
	Ready, Ended bool
	Start        int64 // its monotonic reading as the wait began (ns)
	Late         int64 // how late it woke (ns, virtual); negative: early
}

// ParseWait reads the output of a WaitPrograms program.
func ParseWait(b []byte) WaitOutput {
	var w WaitOutput
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 1 && f[0] == "loaded":
			w.Loaded = true
		case len(f) == 2 && f[0] == "ready":
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				w.Ready, w.Start = true, n
			}
		case len(f) == 2 && f[0] == "late":
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				w.Ended, w.Late = true, n
			}
		}
	}
	return w
}
