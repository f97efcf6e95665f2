// Test and benchmark harness for the replacement vDSO, compiled and driven
// by harness_test.go. It maps the region exactly as the supervisor does
// (image R+X, per-process page R, shared clock page R from fd 3), fills the
// per-process page with its own real vDSO's functions (base from
// getauxval(AT_SYSINFO_EHDR) + offsets from vdso.ParseVDSO), then answers
// commands on stdin, one per line:
//
//   r ID N        N reads of clock ID: "ret real_before virt real_after" (ns)
//   g             gettimeofday: "ret real_before virt_us*1000 real_after"
//   t             time(): "ret coarse_before virt_s*1e9 coarse_after"
//   res ID        clock_getres: "ret_real res_real ret_virt res_virt"
//   cpu           getcpu: "ret_real cpu_real ret_virt cpu_virt"
//   mono ID N T   T threads x N reads each, checking each thread's readings
//                 never decrease: "ok" or "backwards ..."
//   bench ID N T  T threads x N reads each through the real vDSO, the
//                 replacement and libc clock_gettime, in 21 interleaved
//                 rounds: "native_ns dilated_ns libc_ns", the median
//                 round's ns per read (per thread)
//   fake 1|0      point the per-process page's clock_gettime at a fake
//                 real clock (or back at the real vDSO)
//   x ID REAL     with the fake: the replacement's reading of clock ID when
//                 the real clock reads REAL ns: "ret virt"
//   q             quit
//
// "harness dlcheck IMAGE" instead dlopens the image with glibc's loader and
// prints the offsets dlvsym finds for the LINUX_2.6 symbols.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <dlfcn.h>
#include <link.h>

typedef int (*cg_fn)(clockid_t, struct timespec *);
typedef int (*gtod_fn)(void *, void *);
typedef long (*time_fn)(long *);
typedef int (*getcpu_fn)(unsigned *, unsigned *, void *);

static cg_fn real_cg, virt_cg, real_res, virt_res;
static gtod_fn virt_gtod;
static time_fn virt_time;
static getcpu_fn real_getcpu, virt_getcpu;

static long long ns(const struct timespec *ts) { return ts->tv_sec * 1000000000LL + ts->tv_nsec; }

// The fake "real" clock_gettime for exact comparisons with the Go math: it
// returns fake_now for any id.
static long long fake_now;

static int fake_cg(clockid_t id, struct timespec *ts)
{
	(void)id;
	ts->tv_sec = fake_now / 1000000000LL;
	ts->tv_nsec = fake_now % 1000000000LL;
	if (ts->tv_nsec < 0) {
		ts->tv_nsec += 1000000000LL;
		ts->tv_sec--;
	}
	return 0;
}

static void die(const char *what)
{
	fprintf(stderr, "harness: %s: %s\n", what, strerror(errno));
	exit(2);
}

struct job {
	clockid_t id;
	long n;
	cg_fn fn;
	int bad;
	long long a, b;
	double ns_per;
	pthread_barrier_t *bar;
};

static void *mono_thread(void *arg)
{
	struct job *j = arg;
	struct timespec ts;
	long long prev = -1;
	pthread_barrier_wait(j->bar);
	for (long i = 0; i < j->n; i++) {
		if (j->fn(j->id, &ts) != 0) {
			j->bad = 2;
			return 0;
		}
		long long v = ns(&ts);
		if (v < prev) {
			j->bad = 1;
			j->a = prev;
			j->b = v;
			return 0;
		}
		prev = v;
	}
	return 0;
}

static void *bench_thread(void *arg)
{
	struct job *j = arg;
	struct timespec ts, t0, t1;
	long long sink = 0;
	pthread_barrier_wait(j->bar);
	// Timed through the real vDSO: libfaketime must not scale the timing.
	real_cg(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < j->n; i++) {
		j->fn(j->id, &ts);
		sink += ts.tv_nsec;
	}
	real_cg(CLOCK_MONOTONIC, &t1);
	j->ns_per = (double)(ns(&t1) - ns(&t0)) / (double)j->n;
	j->a = sink;
	return 0;
}

static int libc_cg(clockid_t id, struct timespec *ts) { return clock_gettime(id, ts); }

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

// run starts t threads of f over fn and returns the first bad job or the
// mean ns per read.
static double run(void *(*f)(void *), cg_fn fn, clockid_t id, long n, int t, struct job *bad)
{
	pthread_t th[64];
	struct job jobs[64];
	pthread_barrier_t bar;
	if (t < 1 || t > 64)
		t = 1;
	pthread_barrier_init(&bar, 0, t);
	for (int i = 0; i < t; i++) {
		jobs[i] = (struct job){.id = id, .n = n, .fn = fn, .bar = &bar};
		if (pthread_create(&th[i], 0, f, &jobs[i]))
			die("pthread_create");
	}
	double sum = 0;
	for (int i = 0; i < t; i++) {
		pthread_join(th[i], 0);
		sum += jobs[i].ns_per;
		if (jobs[i].bad && bad && !bad->bad)
			*bad = jobs[i];
	}
	pthread_barrier_destroy(&bar);
	return sum / t;
}

static int dlcheck(const char *image)
{
	void *h = dlopen(image, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "harness: dlopen: %s\n", dlerror());
		return 1;
	}
	struct link_map *lm;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm)) {
		fprintf(stderr, "harness: dlinfo: %s\n", dlerror());
		return 1;
	}
	const char *names[] = {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time",
			       "__vdso_clock_getres", "__vdso_getcpu", "__vdso_getrandom"};
	for (int i = 0; i < 6; i++) {
		void *p = dlvsym(h, names[i], "LINUX_2.6");
		printf("%s %lu\n", names[i], p ? (unsigned long)((char *)p - (char *)lm->l_addr) : 0UL);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "dlcheck") == 0)
		return dlcheck(argv[2]);
	if (argc != 12) {
		fprintf(stderr, "usage: harness IMAGE IMAGE_SIZE REGION_SIZE PROC_OFF CLOCK_OFF "
				"img_cg img_gtod img_time img_res img_getcpu real_offsets(cg,gtod,time,res,getcpu)\n");
		return 2;
	}
	const char *image = argv[1];
	long image_size = atol(argv[2]), region_size = atol(argv[3]);
	long proc_off = atol(argv[4]), clock_off = atol(argv[5]);
	unsigned long roff[5];
	if (sscanf(argv[11], "%lu,%lu,%lu,%lu,%lu", &roff[0], &roff[1], &roff[2], &roff[3], &roff[4]) != 5) {
		fprintf(stderr, "harness: bad real offsets %s\n", argv[11]);
		return 2;
	}
	unsigned long real_base = getauxval(AT_SYSINFO_EHDR);
	if (!real_base) {
		fprintf(stderr, "harness: no vDSO (AT_SYSINFO_EHDR is 0)\n");
		return 2;
	}

	// One contiguous region, as the supervisor maps it.
	char *base = mmap(0, region_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		die("reserve region");
	int ifd = open(image, O_RDONLY | O_CLOEXEC);
	if (ifd < 0)
		die("open image");
	if (mmap(base, image_size, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, ifd, 0) == MAP_FAILED)
		die("map image");
	close(ifd);
	unsigned long long *proc = mmap(base + proc_off, 4096, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (proc == MAP_FAILED)
		die("map proc page");
	((unsigned *)proc)[0] = 0x50584d56;
	((unsigned *)proc)[1] = 1;
	for (int i = 0; i < 5; i++)
		proc[1 + i] = roff[i] ? real_base + roff[i] : 0;
	if (mprotect(proc, 4096, PROT_READ))
		die("mprotect proc page");
	if (mmap(base + clock_off, 4096, PROT_READ, MAP_SHARED | MAP_FIXED, 3, 0) == MAP_FAILED)
		die("map clock page");

	real_cg = (cg_fn)(real_base + roff[0]);
	real_res = (cg_fn)(real_base + roff[3]);
	real_getcpu = (getcpu_fn)(real_base + roff[4]);
	virt_cg = (cg_fn)(base + atol(argv[6]));
	virt_gtod = (gtod_fn)(base + atol(argv[7]));
	virt_time = (time_fn)(base + atol(argv[8]));
	virt_res = (cg_fn)(base + atol(argv[9]));
	virt_getcpu = (getcpu_fn)(base + atol(argv[10]));

	char line[256];
	setvbuf(stdout, 0, _IOLBF, 0);
	while (fgets(line, sizeof line, stdin)) {
		int id, t;
		long n;
		struct timespec a, v, b;
		if (sscanf(line, "r %d %ld", &id, &n) == 2) {
			for (long i = 0; i < n; i++) {
				real_cg(id, &a);
				int r = virt_cg(id, &v);
				real_cg(id, &b);
				printf("%d %lld %lld %lld\n", r, ns(&a), r ? 0 : ns(&v), ns(&b));
			}
		} else if (line[0] == 'g') {
			struct { long s, us; } tv;
			struct { int mw, dst; } tz = {-1, -1};
			real_cg(CLOCK_REALTIME, &a);
			int r = virt_gtod(&tv, &tz);
			real_cg(CLOCK_REALTIME, &b);
			printf("%d %lld %lld %lld %d\n", r, ns(&a), (tv.s * 1000000LL + tv.us) * 1000, ns(&b), tz.mw != -1);
		} else if (line[0] == 't') {
			long out = -1;
			real_cg(CLOCK_REALTIME_COARSE, &a);
			long r = virt_time(&out);
			real_cg(CLOCK_REALTIME_COARSE, &b);
			printf("%d %lld %lld %lld\n", r != out, ns(&a), r * 1000000000LL, ns(&b));
		} else if (sscanf(line, "res %d", &id) == 1) {
			int r1 = real_res(id, &a), r2 = virt_res(id, &b);
			printf("%d %lld %d %lld\n", r1, r1 ? 0 : ns(&a), r2, r2 ? 0 : ns(&b));
		} else if (strncmp(line, "cpu", 3) == 0) {
			unsigned c1 = 999, c2 = 999;
			int r1 = real_getcpu(&c1, 0, 0), r2 = virt_getcpu(&c2, 0, 0);
			printf("%d %u %d %u\n", r1, c1, r2, c2);
		} else if (sscanf(line, "mono %d %ld %d", &id, &n, &t) == 3) {
			struct job bad = {0};
			run(mono_thread, virt_cg, id, n, t, &bad);
			if (bad.bad == 2)
				printf("error\n");
			else if (bad.bad)
				printf("backwards %lld %lld\n", bad.a, bad.b);
			else
				printf("ok\n");
		} else if (sscanf(line, "bench %d %ld %d", &id, &n, &t) == 3) {
			// Interleaved rounds, median of each: the machine is shared
			// and noisy, so one long loop per kind would compare moments,
			// not code paths.
			enum { R = 21 };
			cg_fn fns[3] = {real_cg, virt_cg, libc_cg};
			double per[3][R];
			long chunk = n / R > 0 ? n / R : 1;
			for (int r = 0; r < R; r++)
				for (int k = 0; k < 3; k++)
					per[k][r] = run(bench_thread, fns[k], id, chunk, t, 0);
			for (int k = 0; k < 3; k++)
				qsort(per[k], R, sizeof(double), cmpd);
			printf("%.3f %.3f %.3f\n", per[0][R / 2], per[1][R / 2], per[2][R / 2]);
		} else if (sscanf(line, "fake %d", &id) == 1) {
			if (mprotect(proc, 4096, PROT_READ | PROT_WRITE))
				die("mprotect proc page");
			proc[1] = id ? (unsigned long long)fake_cg : real_base + roff[0];
			if (mprotect(proc, 4096, PROT_READ))
				die("mprotect proc page");
			printf("ok\n");
		} else if (sscanf(line, "x %d %lld", &id, &fake_now) == 2) {
			int r = virt_cg(id, &v);
			printf("%d %lld\n", r, r ? 0 : ns(&v));
		} else if (line[0] == 'q') {
			return 0;
		} else {
			printf("? %s", line);
		}
	}
	return 0;
}
