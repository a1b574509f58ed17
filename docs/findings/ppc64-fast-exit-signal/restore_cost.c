// SPDX-License-Identifier: GPL-2.0
/*
 * What the fix costs: an io_uring loop in which every iteration's completion runs as
 * TWA_SIGNAL task_work on the exit of one of this thread's system calls, the exit that the
 * patch turns into a full register restore.
 *
 * One iteration: an IORING_OP_READ of one byte from an empty pipe is submitted (io_uring arms
 * a poll on the pipe), then one byte is written to the pipe by this thread, through `sc` or
 * `scv 0`. The write wakes the poll, io_uring queues the read's completion as task_work on this
 * thread (_TIF_NOTIFY_SIGNAL), and the write's syscall exit runs it: with the patch that exit
 * restores every register, without it only the fast-exit set. The completion is then reaped
 * from the ring, with no system call. A second loop, `plain`, writes and reads the pipe with
 * no io_uring: the same two system calls' base cost, for scale.
 *
 * Run as PID 1 of a VM (regtorture's scripts/reproducer --source FILE --vm KERNEL -- ...):
 * argv[1] is the seconds to spend, split between the three loops, each measured in rounds of
 * half a second. It prints one line per loop, then REPRO-RESULT: clean (the reproducer
 * script's success), or error if a completion went missing.
 *
 *   restore-cost: loop=sc-task-work rounds=N iterations/s median=M min=A max=B
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef PPC_FEATURE2_SCV
#define PPC_FEATURE2_SCV 0x00100000
#endif
#define MAX_ROUNDS 256

/* write(fd, buf, 1) through sc: -errno on failure (CR0.SO set). */
static long sc_write(int fd, const char *buf)
{
	register long r0 asm("r0") = __NR_write;
	register long r3 asm("r3") = fd;
	register long r4 asm("r4") = (long)buf;
	register long r5 asm("r5") = 1;

	asm volatile("sc\n\tbns+ 1f\n\tneg %1, %1\n1:"
		     : "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5)
		     :
		     : "memory", "cr0", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "ctr", "xer");
	return r3;
}

/* The same through scv 0, which returns -errno itself and clobbers LR. */
static long scv_write(int fd, const char *buf)
{
	register long r0 asm("r0") = __NR_write;
	register long r3 asm("r3") = fd;
	register long r4 asm("r4") = (long)buf;
	register long r5 asm("r5") = 1;

	asm volatile(".machine push\n\t.machine power9\n\tscv 0\n\t.machine pop"
		     : "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5)
		     :
		     : "memory", "cr0", "cr1", "cr5", "cr6", "cr7", "r6", "r7", "r8", "r9", "r10",
		       "r11", "r12", "ctr", "xer", "lr");
	return r3;
}

struct ring {
	int fd;
	char *sq, *cq;
	struct io_uring_sqe *sqes;
	struct io_uring_params p;
};

static int ring_setup(struct ring *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = syscall(__NR_io_uring_setup, 4, &r->p);
	if (r->fd < 0)
		return -errno;
	r->sq = mmap(NULL, r->p.sq_off.array + r->p.sq_entries * sizeof(unsigned int),
		     PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQ_RING);
	r->cq = mmap(NULL, r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe),
		     PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, r->p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED, r->fd, IORING_OFF_SQES);
	if (r->sq == MAP_FAILED || r->cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -ENOMEM;
	return 0;
}

/* Submit a one-byte read of fd into buf. */
static int submit_read(struct ring *r, int fd, char *buf)
{
	unsigned int *sq_tail = (unsigned int *)(r->sq + r->p.sq_off.tail);
	unsigned int *sq_mask = (unsigned int *)(r->sq + r->p.sq_off.ring_mask);
	unsigned int *sq_array = (unsigned int *)(r->sq + r->p.sq_off.array);
	unsigned int tail = *sq_tail, idx = tail & *sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_READ;
	sqe->fd = fd;
	sqe->addr = (unsigned long)buf;
	sqe->len = 1;
	sq_array[idx] = idx;
	__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
	return syscall(__NR_io_uring_enter, r->fd, 1, 0, 0, NULL, 0) == 1 ? 0 : -errno;
}

/* Reap one completion, which must be there already (the write's exit ran it): 0, or -1. */
static int reap(struct ring *r)
{
	unsigned int *cq_head = (unsigned int *)(r->cq + r->p.cq_off.head);
	unsigned int *cq_tail = (unsigned int *)(r->cq + r->p.cq_off.tail);
	unsigned int *cq_mask = (unsigned int *)(r->cq + r->p.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(r->cq + r->p.cq_off.cqes);
	unsigned int head = *cq_head;

	if (head == __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE))
		return -1;
	if (cqes[head & *cq_mask].res != 1)
		return -1;
	__atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * One loop for `seconds`, in rounds of half a second: prints its line, returns 0, or -1 when
 * an iteration's completion was not there after the write (then the loop measures nothing).
 */
static int measure(const char *name, long (*wr)(int, const char *), int task_work, double seconds)
{
	double rate[MAX_ROUNDS], end = now() + seconds;
	char in = 0, out = 'x';
	int fds[2], n = 0;
	struct ring r;

	if (pipe(fds) || (task_work && ring_setup(&r))) {
		printf("restore-cost: loop=%s: setup failed: %s\n", name, strerror(errno));
		return -1;
	}
	while (n < MAX_ROUNDS && now() < end) {
		double t0 = now(), t;
		long it = 0;

		do {
			if (task_work && submit_read(&r, fds[0], &in))
				return -1;
			if (wr(fds[1], &out) != 1)
				return -1;
			if (task_work ? reap(&r) : read(fds[0], &in, 1) != 1) {
				printf("restore-cost: loop=%s: no completion after the write\n", name);
				return -1;
			}
			it++;
		} while ((t = now()) - t0 < 0.5);
		rate[n++] = it / (t - t0);
	}
	qsort(rate, n, sizeof(rate[0]), cmp);
	printf("restore-cost: loop=%s rounds=%d iterations/s median=%.0f min=%.0f max=%.0f\n", name,
	       n, rate[n / 2], rate[0], rate[n - 1]);
	close(fds[0]);
	close(fds[1]);
	return 0;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 30;
	int scv = (getauxval(AT_HWCAP2) & PPC_FEATURE2_SCV) != 0;
	int failed = 0, loops = scv ? 3 : 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	failed |= measure("sc-task-work", sc_write, 1, seconds / loops);
	if (scv)
		failed |= measure("scv-task-work", scv_write, 1, seconds / loops);
	failed |= measure("sc-plain", sc_write, 0, seconds / loops);
	if (getpid() == 1) {
		printf("REPRO-RESULT: %s\n", failed ? "error: a loop failed" : "clean");
		reboot(RB_POWER_OFF);
	}
	return failed ? 1 : 0;
}
