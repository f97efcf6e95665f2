// Conformance program for dilated static Go binaries (CGO_ENABLED=0): the
// Go runtime reads clocks through the vDSO and sleeps through futex,
// nanosleep and epoll. Protocol: see package conformance.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

var d time.Duration

func step(name string, want time.Duration, f func()) {
	fmt.Printf("B %s\n", name)
	t0 := time.Now()
	f()
	fmt.Printf("E %s %d %d\n", name, time.Since(t0).Nanoseconds(), want.Nanoseconds())
}

func fail(format string, args ...any) { fmt.Printf("F "+format+"\n", args...) }

// late reports a check that CPU contention can break (see conf.c).
func late(step, format string, args ...any) { fmt.Printf("L "+step+" "+format+"\n", args...) }

func raw(id int) time.Duration {
	var ts unix.Timespec
	if _, _, e := unix.Syscall(unix.SYS_CLOCK_GETTIME, uintptr(id), uintptr(unsafePtr(&ts)), 0); e != 0 {
		fail("raw clock_gettime: %v", e)
	}
	return time.Duration(ts.Nano())
}

func main() {
	n, err := strconv.ParseInt(os.Args[1], 10, 64)
	if err != nil {
		os.Exit(2)
	}
	d = time.Duration(n)

	step("clock-vdso-raw", d, func() {
		m0, r0, w0 := time.Now(), raw(unix.CLOCK_MONOTONIC), raw(unix.CLOCK_REALTIME)
		time.Sleep(d)
		m1, r1, w1 := time.Now(), raw(unix.CLOCK_MONOTONIC), raw(unix.CLOCK_REALTIME)
		el := m1.Sub(m0)
		if x := (r1 - r0) - el; x > d/10 || x < -d/10 {
			late("clock-vdso-raw", "raw MONOTONIC progressed %v, vDSO %v", r1-r0, el)
		}
		if x := (w1 - w0) - el; x > d/10 || x < -d/10 {
			late("clock-vdso-raw", "raw REALTIME progressed %v, vDSO %v", w1-w0, el)
		}
		if x := time.Duration(m1.UnixNano()) - w1; x > d/10 || x < -d/10 {
			late("clock-vdso-raw", "vDSO REALTIME %v differs from raw %v", m1.UnixNano(), w1)
		}
	})
	step("time.Sleep", d, func() { time.Sleep(d) })
	step("timer", d, func() { <-time.NewTimer(d).C })
	step("ticker-periodic", d, func() {
		tk := time.NewTicker(d / 4)
		for range 4 {
			<-tk.C
		}
		tk.Stop()
	})
	step("context-timeout", d, func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		<-ctx.Done()
	})
	step("udp-read-deadline-epoll", d, func() {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			fail("listen: %v", err)
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(d))
		if _, _, err := c.ReadFrom(make([]byte, 16)); err == nil {
			fail("read returned data")
		}
	})
	step("clock_nanosleep-abs-realtime", d, func() {
		dl := unix.NsecToTimespec(time.Now().Add(d).UnixNano())
		for unix.ClockNanosleep(unix.CLOCK_REALTIME, unix.TIMER_ABSTIME, &dl, nil) == unix.EINTR {
		}
	})
	step("timerfd-abs-monotonic", d, func() {
		fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, 0)
		if err != nil {
			fail("timerfd_create: %v", err)
			return
		}
		defer unix.Close(fd)
		now := raw(unix.CLOCK_MONOTONIC)
		its := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(now + d))}
		if err := unix.TimerfdSettime(fd, unix.TFD_TIMER_ABSTIME, &its, nil); err != nil {
			fail("timerfd_settime: %v", err)
			return
		}
		var b [8]byte
		for {
			if _, err := unix.Read(fd, b[:]); err != unix.EINTR {
				break
			}
		}
	})
	step("busy-loop-on-clock", d, func() {
		for t0 := time.Now(); time.Since(t0) < d; {
		}
	})
}
