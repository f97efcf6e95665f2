// vmux replacement vDSO. It is mapped by the dilate supervisor into every
// dilated process as one region: this image, then a per-process page holding
// the addresses of the REAL vDSO's functions in that process, then the
// run's shared clock page (see ../layout.go and vclock/page.go). Each clock
// function calls the real vDSO and, for wall clocks, maps the result to
// virtual time with the page's parameters read under its seqlock:
//
//	virtual = virt_base + ((real - real_base) * mult) >> 32
//
// No libc, no TLS, no stack protector, no relocations: the code reaches the
// two data pages RIP-relative at fixed offsets set by vdso.lds.

typedef long long s64;
typedef unsigned long long u64;
typedef unsigned int u32;

struct kts {
	long tv_sec;
	long tv_nsec;
};

struct ktv {
	long tv_sec;
	long tv_usec;
};

struct ktz {
	int tz_minuteswest;
	int tz_dsttime;
};

// Per-process page (dilate/vdso/procpage.go, layout.go).
struct proc_page {
	u32 magic;
	u32 version;
	u64 clock_gettime;
	u64 gettimeofday;
	u64 time;
	u64 clock_getres;
	u64 getcpu;
	u64 getrandom;
};

struct clock_base {
	s64 real;
	s64 virt;
};

// Shared clock page (vclock/page.go).
struct clock_page {
	u64 seq;
	u32 magic;
	u32 version;
	u64 mult;
	u64 cpu_mult;
	u32 flags;
	u32 writer;
	u32 tdf_num;
	u32 tdf_den;
	u32 share_num;
	u32 share_den;
	u64 reserved;
	struct clock_base base[12];
};

_Static_assert(__builtin_offsetof(struct clock_page, mult) == 16, "mult");
_Static_assert(__builtin_offsetof(struct clock_page, base) == 64, "base");
_Static_assert(__builtin_offsetof(struct proc_page, getcpu) == 40, "getcpu");

extern const struct proc_page vmux_proc __attribute__((visibility("hidden")));
extern struct clock_page vmux_clock __attribute__((visibility("hidden")));

typedef int (*clock_gettime_fn)(int, struct kts *);
typedef int (*gettimeofday_fn)(struct ktv *, struct ktz *);
typedef long (*time_fn)(long *);
typedef int (*getcpu_fn)(unsigned *, unsigned *, void *);
typedef long (*getrandom_fn)(void *, unsigned long, unsigned, void *, unsigned long);

#define NR_sched_yield 24
#define NR_gettimeofday 96
#define NR_time 201
#define NR_clock_gettime 228
#define NR_clock_getres 229
#define NR_getcpu 309

static inline long sys3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

// Wall clocks the real vDSO serves in user space: REALTIME, MONOTONIC,
// MONOTONIC_RAW, the COARSE ones, BOOTTIME, TAI. The alarm clocks (8, 9)
// are wall clocks too, but the real vDSO would answer them with a syscall
// from inside itself; they go to the kernel from here instead, so that the
// supervisor (which dilates trapped clock syscalls) dilates them once.
#define VDSO_WALL_MASK 0x8f3u
#define ALARM_MASK 0x300u

static inline int real_clock_gettime(int id, struct kts *ts)
{
	clock_gettime_fn f = (clock_gettime_fn)vmux_proc.clock_gettime;
	return f(id, ts);
}

// dilated reads clock id through the real vDSO and maps it to virtual time
// under the seqlock. The real read is inside the read section: a reader
// whose section overlaps a writer retries, so every accepted reading was
// taken entirely before or entirely after a re-base and virtual time never
// steps back across a rate change.
static int dilated(int id, struct kts *ts)
{
	struct clock_page *cp = &vmux_clock;
	for (unsigned spins = 0;; spins++) {
		u64 s1 = __atomic_load_n(&cp->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1) {
			// A writer is inside (microseconds). On an overcommitted
			// machine it may be descheduled: after a short spin, give
			// the CPU away (sched_yield is not traced) so it can finish.
			if (spins < 256)
				__builtin_ia32_pause();
			else
				sys3(NR_sched_yield, 0, 0, 0);
			continue;
		}
		int r = real_clock_gettime(id, ts);
		if (r)
			return r;
		u64 mult = __atomic_load_n(&cp->mult, __ATOMIC_RELAXED);
		s64 rb = __atomic_load_n(&cp->base[id].real, __ATOMIC_RELAXED);
		s64 vb = __atomic_load_n(&cp->base[id].virt, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&cp->seq, __ATOMIC_RELAXED) != s1)
			continue;
		s64 real = ts->tv_sec * 1000000000LL + ts->tv_nsec;
		s64 v = vb + (s64)(((__int128)(real - rb) * (__int128)mult) >> 32);
		s64 sec = v / 1000000000LL, ns = v % 1000000000LL;
		if (ns < 0) {
			ns += 1000000000LL;
			sec--;
		}
		ts->tv_sec = sec;
		ts->tv_nsec = ns;
		return 0;
	}
}

int __vdso_clock_gettime(int id, struct kts *ts)
{
	if (!vmux_proc.clock_gettime)
		return (int)sys3(NR_clock_gettime, id, (long)ts, 0);
	if ((unsigned)id < 12 && (VDSO_WALL_MASK >> id) & 1)
		return dilated(id, ts);
	if ((unsigned)id < 12 && (ALARM_MASK >> id) & 1)
		return (int)sys3(NR_clock_gettime, id, (long)ts, 0);
	return real_clock_gettime(id, ts);
}

int __vdso_gettimeofday(struct ktv *tv, struct ktz *tz)
{
	if (!vmux_proc.clock_gettime)
		return (int)sys3(NR_gettimeofday, (long)tv, (long)tz, 0);
	if (tv) {
		struct kts ts;
		int r = dilated(0, &ts);
		if (r)
			return r;
		tv->tv_sec = ts.tv_sec;
		tv->tv_usec = ts.tv_nsec / 1000;
	}
	if (tz) {
		gettimeofday_fn f = (gettimeofday_fn)vmux_proc.gettimeofday;
		if (f)
			return f(0, tz);
		return (int)sys3(NR_gettimeofday, 0, (long)tz, 0);
	}
	return 0;
}

// time() reads REALTIME_COARSE, like the kernel's, so it never runs ahead
// of the coarse clock it is compared with.
long __vdso_time(long *t)
{
	if (!vmux_proc.clock_gettime)
		return sys3(NR_time, (long)t, 0, 0);
	struct kts ts;
	int r = dilated(5, &ts);
	if (r)
		return r;
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}

// clock_getres reports the real resolution: a virtual clock advances in
// steps of at most res/k (finer for k > 1), so the real value is a
// coherent upper bound and keeps programs' assumptions valid.
int __vdso_clock_getres(int id, struct kts *res)
{
	clock_gettime_fn f = (clock_gettime_fn)vmux_proc.clock_getres;
	if (!f)
		return (int)sys3(NR_clock_getres, id, (long)res, 0);
	return f(id, res);
}

int __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused)
{
	getcpu_fn f = (getcpu_fn)vmux_proc.getcpu;
	if (!f)
		return (int)sys3(NR_getcpu, (long)cpu, (long)node, (long)unused);
	return f(cpu, node, unused);
}

// getrandom passes through to the real vDSO (its state lives in the
// real vDSO's data pages); without one it reports ENOSYS, which makes
// glibc and Go use the getrandom syscall.
long __vdso_getrandom(void *buf, unsigned long len, unsigned flags, void *state, unsigned long state_len)
{
	getrandom_fn f = (getrandom_fn)vmux_proc.getrandom;
	if (!f)
		return -38; // ENOSYS
	return f(buf, len, flags, state, state_len);
}

// The unversioned-name aliases the kernel's vDSO exports too.
int clock_gettime(int, struct kts *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct ktv *, struct ktz *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct kts *) __attribute__((weak, alias("__vdso_clock_getres")));
int getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
long getrandom(void *, unsigned long, unsigned, void *, unsigned long) __attribute__((weak, alias("__vdso_getrandom")));
