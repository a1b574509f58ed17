// SPDX-License-Identifier: GPL-2.0
/*
 * Can the lost restart re-run an earlier poll()? A test of the question, not a kselftest.
 *
 * On an affected kernel an `sc` syscall that task_work interrupts with -ERESTARTNOHAND is
 * re-executed with r0 = 0, which is restart_syscall(): it calls current->restart_block.fn.
 * Nothing resets that to do_no_restart_syscall() except a sigreturn, so after a poll() that
 * was itself restarted through its restart block (task_work interrupted it; it finished
 * normally), fn is still do_restart_poll() with that poll's arguments. The lost restart of a
 * later call then runs the earlier poll again, on its old pollfd array.
 *
 * Each round: (1) a 50 ms sc poll() of an empty pipe, interrupted at 1 ms by an io_uring
 * timeout's task_work; it restarts through its restart block (r0 = __NR_restart_syscall = 0
 * survives the fast exit) and returns 0 at its timeout; (2) the pipe is made readable and the
 * old pollfd's revents set to a marker; (3) ppoll(NULL, 0, 20 ms) through sc, interrupted at
 * 1 ms by task_work again. A correct kernel restarts the ppoll: 0, marker untouched. The
 * question is answered yes if the ppoll returns 1 and revents became POLLIN: the old poll ran.
 *
 * Run as PID 1 of a VM (regtorture's scripts/reproducer --source FILE --vm KERNEL): prints a
 * line per round and REPRO-RESULT: bug (the old poll ran) or clean.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 10
#define MARKER 0x7a7a

/* A system call through sc with three arguments: -errno on failure (CR0.SO set). */
static long sc3(long nr, long a, long b, long c)
{
	register long r0 asm("r0") = nr;
	register long r3 asm("r3") = a;
	register long r4 asm("r4") = b;
	register long r5 asm("r5") = c;
	register long r6 asm("r6") = 0;
	register long r7 asm("r7") = 8;

	asm volatile("sc\n\tbns+ 1f\n\tneg %1, %1\n1:"
		     : "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6), "+r"(r7)
		     :
		     : "memory", "cr0", "r8", "r9", "r10", "r11", "r12", "ctr", "xer");
	return r3;
}

struct ring {
	int fd;
	char *sq;
	struct io_uring_sqe *sqes;
	struct io_uring_params p;
};

/* An io_uring whose timeouts complete as TWA_SIGNAL task_work on this thread. */
static int ring_setup(struct ring *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = syscall(__NR_io_uring_setup, 64, &r->p);
	if (r->fd < 0)
		return -1;
	r->sq = mmap(NULL, r->p.sq_off.array + r->p.sq_entries * sizeof(unsigned int),
		     PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQ_RING);
	r->sqes = mmap(NULL, r->p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED, r->fd, IORING_OFF_SQES);
	return r->sq == MAP_FAILED || r->sqes == MAP_FAILED ? -1 : 0;
}

/* Submit a 1 ms IORING_OP_TIMEOUT (completions are left in the CQ ring, which has room). */
static int arm_task_work(struct ring *r)
{
	static struct __kernel_timespec ts = { .tv_nsec = 1000000 };
	unsigned int *sq_tail = (unsigned int *)(r->sq + r->p.sq_off.tail);
	unsigned int *sq_mask = (unsigned int *)(r->sq + r->p.sq_off.ring_mask);
	unsigned int *sq_array = (unsigned int *)(r->sq + r->p.sq_off.array);
	unsigned int tail = *sq_tail, idx = tail & *sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_TIMEOUT;
	sqe->addr = (unsigned long)&ts;
	sqe->len = 1;
	sq_array[idx] = idx;
	__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
	return syscall(__NR_io_uring_enter, r->fd, 1, 0, 0, NULL, 0) == 1 ? 0 : -1;
}

int main(void)
{
	int i, reran = 0, eintr = 0, ok = 0, other = 0;
	struct ring r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (ring_setup(&r)) {
		printf("stale-restart: io_uring_setup: %s\n", strerror(errno));
		printf("REPRO-RESULT: error: no io_uring\n");
		goto out;
	}
	for (i = 0; i < ROUNDS; i++) {
		struct timespec ts = { .tv_nsec = 20000000 };
		struct pollfd old;
		int p[2];
		long a, b;

		if (pipe(p))
			return 3;
		old = (struct pollfd){ .fd = p[0], .events = POLLIN };
		arm_task_work(&r);
		a = sc3(__NR_poll, (long)&old, 1, 50);		/* (1) */
		if (write(p[1], "x", 1) != 1)			/* (2) */
			return 3;
		old.revents = MARKER;
		arm_task_work(&r);
		b = sc3(__NR_ppoll, 0, 0, (long)&ts);		/* (3) */
		printf("stale-restart: round %d: poll %ld, then ppoll %ld, old revents %#x\n", i, a, b,
		       (unsigned)old.revents & 0xffff);
		if (b == 1 && old.revents == POLLIN)
			reran++;
		else if (b == -EINTR)
			eintr++;
		else if (b == 0 && old.revents == MARKER)
			ok++;
		else
			other++;
		close(p[0]);
		close(p[1]);
	}
	printf("stale-restart: %d rounds: %d re-ran the old poll, %d EINTR, %d restarted, %d other\n",
	       ROUNDS, reran, eintr, ok, other);
	printf("REPRO-RESULT: %s\n", reran ? "bug: the lost restart re-ran an earlier poll()" :
	       ok == ROUNDS ? "clean" : "error: neither outcome in every round");
out:
	if (getpid() == 1)
		reboot(RB_POWER_OFF);
	return 0;
}
