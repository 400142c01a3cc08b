/* storm.c - syscall loops for the VM test and the benchmark (static, runs in the guest).
 *   storm getpid N | openclose N | mixed N
 * prints "STORM mode=<m> n=<N> syscalls=<S> ns=<total> ns_per_syscall=<x>" */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "getpid";
	long n = argc > 2 ? atol(argv[2]) : 100000, i, calls = 0;
	long long t0 = now_ns(), t;
	char buf[64];
	struct stat st;

	/* A file on tmpfs: the VM's root is 9p, where every open is a round trip to the host. */
	const char *path = "/dev/shm/falconet-storm";
	int cfd = open(path, O_WRONLY | O_CREAT, 0644);

	if (cfd < 0 || write(cfd, "storm\n", 6) != 6)
		return 1;
	close(cfd);
	t0 = now_ns();
	if (!strcmp(mode, "getpid")) {
		for (i = 0; i < n; i++)
			syscall(SYS_getpid);
		calls = n;
	} else if (!strcmp(mode, "openclose")) {
		for (i = 0; i < n; i++)
			close(open(path, O_RDONLY));
		calls = 2 * n;
	} else if (!strcmp(mode, "mixed")) {
		for (i = 0; i < n; i++) {
			int fd = open(path, O_RDONLY);

			if (read(fd, buf, sizeof(buf)) < 0)
				return 1;
			close(fd);
			stat(path, &st);
			syscall(SYS_getpid);
		}
		calls = 5 * n;
	} else if (!strcmp(mode, "int80")) {
		/* 32-bit syscalls from a 64-bit process: ia32 number 39 is mkdir (here with a NULL
		 * path: EFAULT), while native 39 is getpid.  The module must count and skip them,
		 * never record them as getpid. */
		for (i = 0; i < n; i++) {
			long ret = 39;

			__asm__ volatile("int $0x80" : "+a"(ret) : "b"(0), "c"(0) : "memory");
		}
		calls = n;
	} else if (!strcmp(mode, "clock")) {
		struct timespec ts;

		for (i = 0; i < n; i++)
			clock_gettime(CLOCK_BOOTTIME, &ts);
		calls = n;
	} else {
		fprintf(stderr, "usage: storm getpid|openclose|mixed N\n");
		return 2;
	}
	t = now_ns() - t0;
	printf("STORM mode=%s n=%ld syscalls=%ld ns=%lld ns_per_syscall=%.1f\n", mode, n, calls, t,
	       (double)t / calls);
	return 0;
}
