// Benchmark program for dilated glibc binaries. Times are read from the
// program's own (possibly dilated) CLOCK_MONOTONIC; the harness converts.
//   bench clock N THREADS   ns per clock_gettime(MONOTONIC) (vDSO), per thread
//   bench trap N            per-call ns of poll(ready fd, 1 ms) and
//                           futex(WAIT, wrong value, 1 ms): p50 p99 each
//   bench sleep N US        virtual error of N nanosleeps of US us: p50 p99
//                           min
//   bench early N US        smallest error (ns, by its own clock) of N
//                           waits of US us each: nanosleep (glibc:
//                           clock_nanosleep REALTIME relative), the same
//                           with a remaining-time output, raw nanosleep,
//                           futex WAIT, ppoll; negative = early
//   bench quiet N           N of each call the filter must NOT trap: futex
//                           WAKE and WAIT without timeout, poll and
//                           epoll_wait with timeout 0, clock_gettime
#define _GNU_SOURCE
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static void pct(const char *name, long long *v, int n)
{
	qsort(v, n, sizeof *v, cmp);
	printf("%s %lld %lld %lld\n", name, v[n / 2], v[n * 99 / 100], v[0]);
}

static long n;
static void *reader(void *out)
{
	struct timespec ts;
	long long t0 = now();
	for (long i = 0; i < n; i++)
		clock_gettime(CLOCK_MONOTONIC, &ts);
	*(double *)out = (double)(now() - t0) / n;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	n = atol(argv[2]);
	if (!strcmp(argv[1], "clock")) {
		int th = argc > 3 ? atoi(argv[3]) : 1;
		pthread_t t[64];
		double per[64];
		for (int i = 0; i < th; i++)
			pthread_create(&t[i], NULL, reader, &per[i]);
		double sum = 0;
		for (int i = 0; i < th; i++) {
			pthread_join(t[i], NULL);
			sum += per[i];
		}
		printf("clock %.3f\n", sum / th);
		return 0;
	}
	long long *v = calloc(n, sizeof *v);
	if (!strcmp(argv[1], "trap")) {
		int p[2];
		if (pipe(p) || write(p[1], "x", 1) != 1)
			return 1;
		struct pollfd pfd = {p[0], POLLIN, 0};
		for (long i = 0; i < n; i++) {
			long long t0 = now();
			poll(&pfd, 1, 1);
			v[i] = now() - t0;
		}
		pct("poll", v, n);
		int word = 0;
		struct timespec to = {0, 1000000};
		for (long i = 0; i < n; i++) {
			long long t0 = now();
			syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 1, &to, NULL, 0);
			v[i] = now() - t0;
		}
		pct("futex", v, n);
		return 0;
	}
	if (!strcmp(argv[1], "quiet")) {
		int word = 0, p[2], ep = epoll_create1(0);
		if (pipe(p) || write(p[1], "x", 1) != 1)
			return 1;
		struct pollfd pfd = {p[0], POLLIN, 0};
		struct epoll_event ev = {.events = EPOLLIN};
		epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
		for (long i = 0; i < n; i++) {
			syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
			syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
			poll(&pfd, 1, 0);
			epoll_wait(ep, &ev, 1, 0);
			now();
		}
		printf("quiet %ld\n", n);
		return 0;
	}
	if (!strcmp(argv[1], "early")) {
		long long us = atoll(argv[3]);
		struct timespec ts = {us / 1000000, us % 1000000 * 1000};
		const char *names[] = {"nanosleep", "nanosleeprem", "rawnanosleep", "futex", "ppoll"};
		int word = 0;
		struct timespec rem;
		for (int k = 0; k < 5; k++) {
			for (long i = 0; i < n; i++) {
				long long t0 = now();
				switch (k) {
				case 0: nanosleep(&ts, NULL); break;
				case 1: nanosleep(&ts, &rem); break;
				case 2: syscall(SYS_nanosleep, &ts, NULL); break;
				case 3: syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0); break;
				case 4: ppoll(NULL, 0, &ts, NULL); break;
				}
				v[i] = now() - t0 - us * 1000;
			}
			pct(names[k], v, n);
		}
		return 0;
	}
	if (!strcmp(argv[1], "sleep")) {
		long long us = atoll(argv[3]);
		struct timespec ts = {us / 1000000, us % 1000000 * 1000};
		for (long i = 0; i < n; i++) {
			long long t0 = now();
			nanosleep(&ts, NULL);
			v[i] = now() - t0 - us * 1000;
		}
		pct("sleep", v, n);
		return 0;
	}
	return 2;
}
