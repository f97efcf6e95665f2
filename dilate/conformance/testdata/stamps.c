// stamps: every way a program gets a kernel packet timestamp, each printed
// as "NAME DELTA_NS": the stamp minus clock_gettime(CLOCK_REALTIME) right
// after the receive. Dilated, both are virtual and DELTA is small; an
// undilated stamp is off by the distance between real and virtual time.
//
// Ways: SO_TIMESTAMP, SO_TIMESTAMPNS, SO_TIMESTAMPING (software RX) by
// recvmsg; SO_TIMESTAMPNS by recvmmsg; ioctl SIOCGSTAMP and SIOCGSTAMPNS;
// a thread that existed before the option was set (the filter must reach
// every thread) and a child forked after it.
#define _GNU_SOURCE
#include <linux/net_tstamp.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int rx, tx;
static struct sockaddr_in addr;

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
	perror(what);
	exit(1);
}

static void send1(void) {
	if (sendto(tx, "x", 1, 0, (struct sockaddr *)&addr, sizeof addr) != 1)
		die("sendto");
}

// recv_stamp receives one datagram with recvmsg and returns the stamp of
// the control message of type want (ns), or -1.
static int64_t recv_stamp(int want) {
	char data[16], ctl[512];
	struct iovec iov = {data, sizeof data};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
	if (recvmsg(rx, &m, 0) < 0)
		die("recvmsg");
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != want)
			continue;
		if (want == SO_TIMESTAMP) {
			struct timeval tv;
			memcpy(&tv, CMSG_DATA(c), sizeof tv);
			return (int64_t)tv.tv_sec * 1000000000 + tv.tv_usec * 1000;
		}
		struct timespec ts[3];
		memcpy(ts, CMSG_DATA(c), want == SO_TIMESTAMPING ? sizeof ts : sizeof ts[0]);
		return (int64_t)ts[0].tv_sec * 1000000000 + ts[0].tv_nsec;
	}
	return -1;
}

static void report(const char *name, int64_t stamp) {
	int64_t t = now_ns();
	if (stamp < 0)
		printf("%s none\n", name);
	else
		printf("%s %lld\n", name, (long long)(stamp - t));
	fflush(stdout);
}

static void setopt(int opt, int val) {
	if (setsockopt(rx, SOL_SOCKET, opt, &val, sizeof val) < 0)
		die("setsockopt");
}

static pthread_barrier_t bar;

static void *early_thread(void *arg) {
	(void)arg;
	pthread_barrier_wait(&bar); // the option is set now
	send1();
	report("thread", recv_stamp(SO_TIMESTAMPNS));
	return NULL;
}

int main(void) {
	rx = socket(AF_INET, SOCK_DGRAM, 0);
	tx = socket(AF_INET, SOCK_DGRAM, 0);
	if (rx < 0 || tx < 0)
		die("socket");
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(rx, (struct sockaddr *)&addr, sizeof addr) < 0)
		die("bind");
	socklen_t l = sizeof addr;
	getsockname(rx, (struct sockaddr *)&addr, &l);

	pthread_t th;
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&th, NULL, early_thread, NULL);

	setopt(SO_TIMESTAMPNS, 1);
	pthread_barrier_wait(&bar);
	pthread_join(th, NULL);

	send1();
	report("timestampns", recv_stamp(SO_TIMESTAMPNS));
	setopt(SO_TIMESTAMPNS, 0);
	setopt(SO_TIMESTAMP, 1);
	send1();
	report("timestamp", recv_stamp(SO_TIMESTAMP));
	setopt(SO_TIMESTAMP, 0);
	setopt(SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE);
	send1();
	report("timestamping", recv_stamp(SO_TIMESTAMPING));
	setopt(SO_TIMESTAMPING, 0);

	// recvmmsg without a timeout, two datagrams.
	setopt(SO_TIMESTAMPNS, 1);
	send1();
	send1();
	usleep(1000);
	char data[2][16], ctl[2][256];
	struct iovec iov[2] = {{data[0], 16}, {data[1], 16}};
	struct mmsghdr mm[2];
	memset(mm, 0, sizeof mm);
	for (int i = 0; i < 2; i++) {
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_control = ctl[i];
		mm[i].msg_hdr.msg_controllen = sizeof ctl[i];
	}
	int n = recvmmsg(rx, mm, 2, MSG_WAITFORONE, NULL);
	if (n != 2)
		die("recvmmsg");
	for (int i = 0; i < n; i++) {
		int64_t s = -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mm[i].msg_hdr); c; c = CMSG_NXTHDR(&mm[i].msg_hdr, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
				struct timespec ts;
				memcpy(&ts, CMSG_DATA(c), sizeof ts);
				s = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
			}
		report("recvmmsg", s);
	}

	// The last packet's stamp by ioctl: kept for it only when no control
	// message carries it (the first ioctl turns stamping on).
	setopt(SO_TIMESTAMPNS, 0);
	struct timeval tv;
	struct timespec ts;
	ioctl(rx, SIOCGSTAMP, &tv);
	send1();
	if (recv(rx, data[0], sizeof data[0], 0) < 0)
		die("recv");
	if (ioctl(rx, SIOCGSTAMP, &tv) < 0)
		die("SIOCGSTAMP");
	report("siocgstamp", (int64_t)tv.tv_sec * 1000000000 + tv.tv_usec * 1000);
	if (ioctl(rx, SIOCGSTAMPNS, &ts) < 0)
		die("SIOCGSTAMPNS");
	report("siocgstampns", (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);

	// A child forked after the option was set.
	setopt(SO_TIMESTAMPNS, 1);
	pid_t pid = fork();
	if (pid == 0) {
		send1();
		report("child", recv_stamp(SO_TIMESTAMPNS));
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
