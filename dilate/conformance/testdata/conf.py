# Conformance program for dilated python3 (dynamic glibc + the CPython
# runtime). Protocol: see package conformance.
import ctypes
import os
import queue
import select
import signal
import sys
import threading
import time

D = int(sys.argv[1])
d = D / 1e9


def step(name, want, f):
    print("B", name, flush=True)
    t0 = time.monotonic_ns()
    f()
    print("E", name, time.monotonic_ns() - t0, want, flush=True)


def fail(msg):
    print("F", msg, flush=True)


def late(step, msg):
    # a check that CPU contention can break (see conf.c)
    print("L", step, msg, flush=True)


libc = ctypes.CDLL(None, use_errno=True)


class Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


def raw_ns(clock):
    ts = Timespec()
    if libc.syscall(228, clock, ctypes.byref(ts)) != 0:
        fail("raw clock_gettime failed")
    return ts.sec * 1_000_000_000 + ts.nsec


def clocks():
    m0, r0, w0 = time.monotonic_ns(), raw_ns(1), time.time_ns()
    time.sleep(d)
    m1, r1, w1 = time.monotonic_ns(), raw_ns(1), time.time_ns()
    if abs((r1 - r0) - (m1 - m0)) > D // 10:
        late("clock-vdso-raw", "raw MONOTONIC progressed %d, vDSO %d" % (r1 - r0, m1 - m0))
    if abs((w1 - w0) - (m1 - m0)) > D // 10:
        late("clock-vdso-raw", "REALTIME progressed %d, MONOTONIC %d" % (w1 - w0, m1 - m0))


step("clock-vdso-raw", D, clocks)
step("time.sleep", D, lambda: time.sleep(d))
def _get(q):
    try:
        q.get(timeout=d)
    except queue.Empty:
        pass


r, w = os.pipe()
step("select", D // 1000 * 1000, lambda: select.select([r], [], [], d))
p = select.poll()
p.register(r, select.POLLIN)
step("poll", D // 1_000_000 * 1_000_000, lambda: p.poll(D // 1_000_000))
ep = select.epoll()
ep.register(r, select.EPOLLIN)
step("epoll", D // 1_000_000 * 1_000_000, lambda: ep.poll(d))
step("event-wait-futex", D, lambda: threading.Event().wait(d))
step("queue-get-timeout", D, lambda: _get(queue.Queue()))


def itimer():
    fired = threading.Event()
    signal.signal(signal.SIGALRM, lambda *_: fired.set())
    signal.setitimer(signal.ITIMER_REAL, d)
    while not fired.is_set():
        signal.pause()
    left = signal.getitimer(signal.ITIMER_REAL)
    if left != (0.0, 0.0):
        fail("getitimer after expiry: %r" % (left,))


step("setitimer", D // 1000 * 1000, itimer)


def deadline_thread():
    done = threading.Event()
    t = threading.Thread(target=lambda: (time.sleep(d), done.set()))
    t.start()
    t.join()


step("thread-sleep-join", D, deadline_thread)
