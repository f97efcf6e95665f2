// Conformance program for dilated glibc binaries. Usage: conf D_NS J_NS
// For each step it prints "B name" before and "E name virt_ns want_ns"
// after, measured with CLOCK_MONOTONIC (vDSO); the test timestamps both
// lines in real time. "F msg" reports a failed internal check.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/times.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static long long D, J;

static long long ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long raw_ns(clockid_t c)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, c, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec ts_of(long long n)
{
	struct timespec ts = {n / 1000000000LL, n % 1000000000LL};
	return ts;
}

static long long t0;
static void begin(const char *name)
{
	printf("B %s\n", name);
	fflush(stdout);
	t0 = ns(CLOCK_MONOTONIC);
}
static void end(const char *name, long long want)
{
	long long el = ns(CLOCK_MONOTONIC) - t0;
	printf("E %s %lld %lld\n", name, el, want);
	fflush(stdout);
}
static void fail(const char *msg)
{
	printf("F %s (errno %d)\n", msg, errno);
	fflush(stdout);
}

// late reports a check of step that CPU contention can break (two clock
// reads a stall apart, CPU time a busy machine withheld): the harness
// treats it like a step out of its time bounds and runs again.
static void late(const char *step, const char *msg)
{
	printf("L %s %s\n", step, msg);
	fflush(stdout);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int s) { (void)s; alarms++; }

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	D = atoll(argv[1]);
	J = atoll(argv[2]); // for jiffy-granular timeouts: >= 200 ms real
	struct timespec ts;

	// Clock progression, vDSO and raw syscall, REALTIME vs MONOTONIC.
	begin("clock-vdso-raw");
	long long m0 = ns(CLOCK_MONOTONIC), r0 = raw_ns(CLOCK_MONOTONIC), w0 = ns(CLOCK_REALTIME),
		  b0 = raw_ns(CLOCK_BOOTTIME);
	ts = ts_of(D);
	nanosleep(&ts, NULL);
	long long m1 = ns(CLOCK_MONOTONIC), r1 = raw_ns(CLOCK_MONOTONIC), w1 = ns(CLOCK_REALTIME),
		  b1 = raw_ns(CLOCK_BOOTTIME);
	end("clock-vdso-raw", D);
	if (llabs((r1 - r0) - (m1 - m0)) > D / 10 || llabs((w1 - w0) - (m1 - m0)) > D / 10 ||
	    llabs((b1 - b0) - (m1 - m0)) > D / 10)
		late("clock-vdso-raw", "vDSO, raw-syscall, REALTIME and BOOTTIME progressions disagree");
	if (r0 < m0 - D / 10 || r0 > m0 + D / 10)
		late("clock-vdso-raw", "raw-syscall MONOTONIC differs from vDSO MONOTONIC");
	struct timeval tv;
	gettimeofday(&tv, NULL);
	if (llabs(tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL - ns(CLOCK_REALTIME)) > D)
		fail("gettimeofday disagrees with CLOCK_REALTIME");
	if (llabs((long long)time(NULL) - ns(CLOCK_REALTIME) / 1000000000LL) > 1)
		fail("time() disagrees with CLOCK_REALTIME");

	begin("nanosleep");
	ts = ts_of(D);
	nanosleep(&ts, NULL);
	end("nanosleep", D);

	begin("clock_nanosleep-abs-monotonic");
	ts = ts_of(ns(CLOCK_MONOTONIC) + D);
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	end("clock_nanosleep-abs-monotonic", D);

	begin("clock_nanosleep-abs-realtime");
	ts = ts_of(ns(CLOCK_REALTIME) + D);
	clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
	end("clock_nanosleep-abs-realtime", D);

	int p[2];
	if (pipe(p))
		fail("pipe");
	begin("poll");
	struct pollfd pfd = {p[0], POLLIN, 0};
	poll(&pfd, 1, (int)(D / 1000000));
	end("poll", D / 1000000 * 1000000);

	begin("ppoll");
	ts = ts_of(D);
	ppoll(&pfd, 1, &ts, NULL);
	end("ppoll", D);

	begin("select");
	fd_set rs;
	FD_ZERO(&rs);
	FD_SET(p[0], &rs);
	tv.tv_sec = D / 1000000000LL;
	tv.tv_usec = D % 1000000000LL / 1000;
	select(p[0] + 1, &rs, NULL, NULL, &tv);
	end("select", D / 1000 * 1000);

	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN};
	epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
	begin("epoll_wait");
	epoll_wait(ep, &ev, 1, (int)(D / 1000000));
	end("epoll_wait", D / 1000000 * 1000000);

	begin("futex-cond-timedwait-abs-realtime");
	ts = ts_of(ns(CLOCK_REALTIME) + D);
	pthread_mutex_lock(&mu);
	while (pthread_cond_timedwait(&cv, &mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&mu);
	end("futex-cond-timedwait-abs-realtime", D);

	begin("timerfd-relative-periodic");
	int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	struct itimerspec its = {ts_of(D / 4), ts_of(D / 4)};
	timerfd_settime(tfd, 0, &its, NULL);
	unsigned long long n, total = 0;
	while (total < 4) {
		if (read(tfd, &n, 8) != 8) {
			fail("timerfd read");
			break;
		}
		total += n;
	}
	end("timerfd-relative-periodic", D);
	struct itimerspec cur;
	timerfd_gettime(tfd, &cur);
	if (cur.it_interval.tv_sec * 1000000000LL + cur.it_interval.tv_nsec != D / 4)
		fail("timerfd_gettime interval is not the virtual one");
	close(tfd);

	begin("timerfd-abs-realtime");
	tfd = timerfd_create(CLOCK_REALTIME, 0);
	struct itimerspec abs = {{0, 0}, ts_of(ns(CLOCK_REALTIME) + D)};
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &abs, NULL);
	if (read(tfd, &n, 8) != 8)
		fail("timerfd read");
	end("timerfd-abs-realtime", D);
	close(tfd);

	begin("setitimer");
	signal(SIGALRM, on_alarm);
	struct itimerval itv = {{0, 0}, {D / 1000000000LL, D % 1000000000LL / 1000}};
	setitimer(ITIMER_REAL, &itv, NULL);
	while (!alarms)
		pause();
	end("setitimer", D / 1000 * 1000);

	begin("nanosleep-interrupted");
	itv.it_value.tv_sec = D / 1000000000LL;
	itv.it_value.tv_usec = D % 1000000000LL / 1000;
	setitimer(ITIMER_REAL, &itv, NULL);
	ts = ts_of(3 * D);
	struct timespec rem = {0, 0};
	int r = nanosleep(&ts, &rem);
	end("nanosleep-interrupted", D / 1000 * 1000);
	long long left = rem.tv_sec * 1000000000LL + rem.tv_nsec;
	if (r != -1 || errno != EINTR)
		fail("nanosleep was not interrupted");
	else if (left < D || left > 2 * D + D / 10)
		fail("nanosleep remaining time is not about 2D virtual");

	// Every wall clock id, through the vDSO and the raw syscall, at the same
	// moment and across a sleep. COARSE clocks tick in jiffies (J / 50
	// virtual).
	{
		static const int ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW,
					  CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME, CLOCK_TAI};
		long long v0[7], s0[7], v1[7], s1[7];
		for (int i = 0; i < 7; i++) {
			v0[i] = ns(ids[i]);
			s0[i] = raw_ns(ids[i]);
		}
		begin("all-clocks");
		ts = ts_of(D);
		nanosleep(&ts, NULL);
		end("all-clocks", D);
		for (int i = 0; i < 7; i++) {
			v1[i] = ns(ids[i]);
			s1[i] = raw_ns(ids[i]);
			long long tol = D / 10 + 2 * J / 50;
			if (llabs(s0[i] - v0[i]) > tol || llabs(s1[i] - v1[i]) > tol)
				printf("L all-clocks clock %d: vDSO and raw syscall disagree (%lld vs %lld)\n", ids[i], v1[i], s1[i]);
			if (v1[i] - v0[i] < D - tol || v1[i] - v0[i] > D + tol)
				printf("L all-clocks clock %d progressed %lld ns across a %lld ns sleep\n", ids[i], v1[i] - v0[i], D);
		}
		fflush(stdout);
	}

	begin("pselect6");
	FD_ZERO(&rs);
	FD_SET(p[0], &rs);
	ts = ts_of(D);
	pselect(p[0] + 1, &rs, NULL, NULL, &ts, NULL);
	end("pselect6", D);

	begin("epoll_pwait");
	sigset_t none;
	sigemptyset(&none);
	epoll_pwait(ep, &ev, 1, (int)(D / 1000000), &none);
	end("epoll_pwait", D / 1000000 * 1000000);

	begin("epoll_pwait2");
	ts = ts_of(D);
	if (syscall(SYS_epoll_pwait2, ep, &ev, 1, &ts, NULL, 8) < 0)
		fail("epoll_pwait2");
	end("epoll_pwait2", D);

	begin("futex-wait-relative");
	{
		int word = 0;
		ts = ts_of(D);
		syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
	}
	end("futex-wait-relative", D);

	begin("futex-wait-bitset-abs-monotonic");
	{
		int word = 0;
		ts = ts_of(ns(CLOCK_MONOTONIC) + D);
		syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &ts, NULL, FUTEX_BITSET_MATCH_ANY);
	}
	end("futex-wait-bitset-abs-monotonic", D);

	begin("futex-wait-bitset-abs-realtime");
	{
		int word = 0;
		ts = ts_of(ns(CLOCK_REALTIME) + D);
		syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &ts, NULL,
			FUTEX_BITSET_MATCH_ANY);
	}
	end("futex-wait-bitset-abs-realtime", D);

	begin("rt_sigtimedwait");
	{
		sigset_t usr;
		sigemptyset(&usr);
		sigaddset(&usr, SIGUSR1);
		sigprocmask(SIG_BLOCK, &usr, NULL);
		ts = ts_of(D);
		if (sigtimedwait(&usr, NULL, &ts) != -1)
			fail("sigtimedwait returned a signal");
	}
	end("rt_sigtimedwait", D);

	begin("posix-timer-abs-monotonic");
	{
		timer_t tid;
		struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
		sigset_t usr;
		sigemptyset(&usr);
		sigaddset(&usr, SIGUSR1);
		if (timer_create(CLOCK_MONOTONIC, &sev, &tid))
			fail("timer_create");
		struct itimerspec pit = {{0, 0}, ts_of(ns(CLOCK_MONOTONIC) + D)};
		timer_settime(tid, TIMER_ABSTIME, &pit, NULL);
		struct itimerspec left;
		timer_gettime(tid, &left);
		long long l = left.it_value.tv_sec * 1000000000LL + left.it_value.tv_nsec;
		if (l > D || l < D - D / 10)
			fail("timer_gettime does not return the virtual time left");
		int sig;
		sigwait(&usr, &sig);
		timer_delete(tid);
	}
	end("posix-timer-abs-monotonic", D);

	// Socket receive timeout (SO_RCVTIMEO), and getsockopt reads it back.
	int us = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bind(us, (struct sockaddr *)&sa, sizeof sa);
	struct timeval rto = {J / 1000000000LL, J % 1000000000LL / 1000};
	setsockopt(us, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof rto);
	begin("so_rcvtimeo");
	char buf[8];
	if (recv(us, buf, sizeof buf, 0) != -1)
		fail("recv returned data");
	end("so_rcvtimeo", J / 1000 * 1000);
	struct timeval got;
	socklen_t gl = sizeof got;
	getsockopt(us, SOL_SOCKET, SO_RCVTIMEO, &got, &gl);
	// The kernel keeps socket timeouts in jiffies (4 ms at HZ=250): the
	// value read back is the real value rounded up to one, scaled back.
	// J is 200 ms real, so one jiffy is J / 50 virtual.
	if (llabs((got.tv_sec - rto.tv_sec) * 1000000000LL + (got.tv_usec - rto.tv_usec) * 1000LL) > J / 50 + 1000)
		fail("getsockopt(SO_RCVTIMEO) does not return the virtual timeout");
	setsockopt(us, SOL_SOCKET, SO_SNDTIMEO, &rto, sizeof rto);
	gl = sizeof got;
	getsockopt(us, SOL_SOCKET, SO_SNDTIMEO, &got, &gl);
	if (llabs((got.tv_sec - rto.tv_sec) * 1000000000LL + (got.tv_usec - rto.tv_usec) * 1000LL) > J / 50 + 1000)
		fail("getsockopt(SO_SNDTIMEO) does not return the virtual timeout");
	close(us);

	// CPU time: with a whole core (share 1) a busy loop's virtual CPU time
	// follows virtual wall time; it can fall short when other processes
	// take the CPU, never exceed it. Unscaled at k = 10 it would read up
	// to 10x. getrusage must agree with the CPU-time clock.
	begin("cpu-busy-loop");
	long long c0 = ns(CLOCK_PROCESS_CPUTIME_ID), s0 = ns(CLOCK_MONOTONIC), tc0 = ns(CLOCK_THREAD_CPUTIME_ID);
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	while (ns(CLOCK_MONOTONIC) - s0 < D)
		;
	getrusage(RUSAGE_SELF, &ru1);
	long long c1 = ns(CLOCK_PROCESS_CPUTIME_ID), tc1 = ns(CLOCK_THREAD_CPUTIME_ID);
	end("cpu-busy-loop", D);
	long long ru = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000000LL +
		       (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) * 1000LL;
	if (c1 - c0 > D + D / 5)
		fail("PROCESS_CPUTIME of a busy loop exceeds its virtual duration");
	if (c1 - c0 < D / 5)
		late("cpu-busy-loop", "PROCESS_CPUTIME of a busy loop is far below its virtual duration");
	if (llabs((tc1 - tc0) - (c1 - c0)) > D / 10)
		late("cpu-busy-loop", "THREAD_CPUTIME disagrees with PROCESS_CPUTIME in a single thread");
	if (llabs(ru - (c1 - c0)) > D / 5)
		late("cpu-busy-loop", "getrusage CPU time disagrees with PROCESS_CPUTIME");

	// Results that carry times: alarm's remaining seconds, getitimer,
	// clock_getres through the vDSO and the raw syscall.
	alarm(5);
	unsigned left5 = alarm(0);
	if (left5 != 5)
		fail("alarm did not return the virtual remaining seconds");
	itv.it_value.tv_sec = 3;
	itv.it_value.tv_usec = 0;
	setitimer(ITIMER_REAL, &itv, NULL);
	struct itimerval gi;
	getitimer(ITIMER_REAL, &gi);
	if (gi.it_value.tv_sec != 2 || gi.it_value.tv_usec < 900000)
		fail("getitimer does not return the virtual remaining time");
	itv.it_value.tv_sec = 0;
	setitimer(ITIMER_REAL, &itv, NULL);
	struct timespec res1, res2;
	clock_getres(CLOCK_MONOTONIC, &res1);
	syscall(SYS_clock_getres, CLOCK_MONOTONIC, &res2);
	if (res1.tv_sec != res2.tv_sec || res1.tv_nsec != res2.tv_nsec)
		fail("clock_getres differs between the vDSO and the syscall");
	struct tms tm;
	clock_t e0 = times(&tm);
	ts = ts_of(D);
	nanosleep(&ts, NULL);
	clock_t e1 = times(&tm);
	if (llabs((e1 - e0) * (1000000000LL / sysconf(_SC_CLK_TCK)) - D) > D / 2 + 10000000LL)
		fail("times() elapsed ticks are not virtual");
	return 0;
}
