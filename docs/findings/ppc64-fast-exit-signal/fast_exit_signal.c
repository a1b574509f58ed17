// SPDX-License-Identifier: GPL-2.0
/*
 * A blocking system call interrupted by TWA_SIGNAL task_work (an io_uring completion) must be
 * restarted, and a real signal that arrives with that task_work must reach its handler, on
 * both system-call entries (sc and scv).
 *
 * On powerpc64 5.11 to 7.1, a signal set up while task_work runs on the fast syscall exit is
 * never delivered: the exit returns to user space without the full register restore, so the
 * call's -ERESTARTNOHAND becomes EINTR with no signal at all (sc), or the task enters its
 * handler with wrong registers and dies (scv). Each case runs in a child, so a death is a
 * failure of that case.
 *
 * Built for tools/testing/selftests/powerpc/signal/ (kselftest.h); prints KTAP. Run as PID 1
 * (regtorture's scripts/reproducer --source), it also prints the REPRO-RESULT line that
 * script reads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest.h"

#define ROUNDS 100
#define PPOLL_NS 20000000L	/* 20 ms */
#define TASK_WORK_NS 1000000L	/* the io_uring timeout: 1 ms */
#ifndef PPC_FEATURE2_SCV
#define PPC_FEATURE2_SCV 0x00100000
#endif

/* The registers of ppoll(NULL, 0, ts, NULL, 8), all of which the call may change. */
#define PPOLL_REGS(ts)					\
	register long r0 asm("r0") = __NR_ppoll;	\
	register long r3 asm("r3") = 0;			\
	register long r4 asm("r4") = 0;			\
	register long r5 asm("r5") = (long)(ts);	\
	register long r6 asm("r6") = 0;			\
	register long r7 asm("r7") = 8
#define PPOLL_OPERANDS "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6), "+r"(r7)

/* ppoll through sc: -errno on failure (CR0.SO set). */
static long sc_ppoll(struct timespec *ts)
{
	PPOLL_REGS(ts);
	asm volatile("sc\n\tbns+ 1f\n\tneg %1, %1\n1:"
		     : PPOLL_OPERANDS
		     :
		     : "memory", "cr0", "r8", "r9", "r10", "r11", "r12", "ctr", "xer");
	return r3;
}

/* ppoll through scv 0, which returns -errno itself and clobbers LR. */
static long scv_ppoll(struct timespec *ts)
{
	PPOLL_REGS(ts);
	asm volatile(".machine push\n\t.machine power9\n\tscv 0\n\t.machine pop"
		     : PPOLL_OPERANDS
		     :
		     : "memory", "cr0", "cr1", "cr5", "cr6", "cr7", "r8", "r9", "r10", "r11", "r12",
		       "ctr", "xer", "lr");
	return r3;
}

/* An io_uring whose IORING_OP_TIMEOUT completes as TWA_SIGNAL task_work on this thread. */
struct ring {
	int fd;
	char *sq, *cq;
	struct io_uring_sqe *sqes;
	struct io_uring_params p;
};

static int ring_setup(struct ring *r)
{
	size_t sq_len, cq_len;

	memset(r, 0, sizeof(*r));
	r->fd = syscall(__NR_io_uring_setup, 4, &r->p);
	if (r->fd < 0)
		return -errno;
	sq_len = r->p.sq_off.array + r->p.sq_entries * sizeof(unsigned int);
	cq_len = r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe);
	r->sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQ_RING);
	r->cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, r->p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED, r->fd, IORING_OFF_SQES);
	if (r->sq == MAP_FAILED || r->cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -ENOMEM;
	return 0;
}

/* Queue one timeout of TASK_WORK_NS and submit it, after reaping what completed. */
static int arm_task_work(struct ring *r, struct __kernel_timespec *ts)
{
	unsigned int *sq_tail = (unsigned int *)(r->sq + r->p.sq_off.tail);
	unsigned int *sq_mask = (unsigned int *)(r->sq + r->p.sq_off.ring_mask);
	unsigned int *sq_array = (unsigned int *)(r->sq + r->p.sq_off.array);
	unsigned int *cq_head = (unsigned int *)(r->cq + r->p.cq_off.head);
	unsigned int *cq_tail = (unsigned int *)(r->cq + r->p.cq_off.tail);
	unsigned int tail = *sq_tail, idx = tail & *sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];

	__atomic_store_n(cq_head, __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_TIMEOUT;
	sqe->addr = (unsigned long)ts;
	sqe->len = 1;
	sq_array[idx] = idx;
	__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
	return syscall(__NR_io_uring_enter, r->fd, 1, 0, 0, NULL, 0) == 1 ? 0 : -errno;
}

static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
	(void)sig;
	handled++;
}

/*
 * One case, in a child: ROUNDS times, task_work during a 20 ms ppoll (and, with `signal`, a
 * SIGALRM 1 ms in). Without a signal ppoll must return 0; with one, EINTR only after the
 * handler ran. Exit 0 pass, 1 fail, 4 skip.
 */
static int run_case(long (*call)(struct timespec *), int signal)
{
	struct __kernel_timespec tw = { .tv_nsec = TASK_WORK_NS };
	struct itimerval it = { .it_value = { .tv_usec = 1000 } };
	struct sigaction sa = { .sa_handler = on_alarm };
	struct ring r;
	int i, e = ring_setup(&r);

	if (e) {
		printf("# io_uring_setup: %s\n", strerror(-e));
		return 4;
	}
	sigaction(SIGALRM, &sa, NULL);	/* no SA_RESTART */
	for (i = 0; i < ROUNDS; i++) {
		struct timespec ts = { .tv_nsec = PPOLL_NS };
		sig_atomic_t before = handled;
		long ret;

		if (arm_task_work(&r, &tw))
			return 4;
		if (signal)
			setitimer(ITIMER_REAL, &it, NULL);
		ret = call(&ts);
		if (signal) {
			struct itimerval off = { 0 };

			setitimer(ITIMER_REAL, &off, NULL);
			if (ret == -EINTR && handled == before) {
				printf("# round %d: EINTR, but the handler never ran\n", i);
				return 1;
			}
		} else if (ret != 0) {
			printf("# round %d: ppoll returned %ld (%s) with no signal sent\n", i, ret,
			       strerror((int)-ret));
			return 1;
		}
	}
	return 0;
}

static void report(const char *name, long (*call)(struct timespec *), int signal)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0)
		_exit(run_case(call, signal));
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status))
		ksft_test_result_fail("%s (died of signal %d)\n", name, WTERMSIG(status));
	else if (WEXITSTATUS(status) == 4)
		ksft_test_result_skip("%s (no io_uring)\n", name);
	else if (WEXITSTATUS(status) == 0)
		ksft_test_result_pass("%s\n", name);
	else
		ksft_test_result_fail("%s\n", name);
}

int main(void)
{
	int scv = (getauxval(AT_HWCAP2) & PPC_FEATURE2_SCV) != 0;
	int init = getpid() == 1;

	if (init)
		printf("repro: fast_exit_signal kselftest\n");
	ksft_print_header();
	ksft_set_plan(4);
	report("sc_ppoll_restarts_after_task_work", sc_ppoll, 0);
	report("sc_signal_with_task_work_reaches_handler", sc_ppoll, 1);
	if (scv) {
		report("scv_ppoll_restarts_after_task_work", scv_ppoll, 0);
		report("scv_signal_with_task_work_reaches_handler", scv_ppoll, 1);
	} else {
		ksft_test_result_skip("scv_ppoll_restarts_after_task_work (no scv)\n");
		ksft_test_result_skip("scv_signal_with_task_work_reaches_handler (no scv)\n");
	}
	if (init) {
		printf("REPRO-RESULT: %s\n", ksft_get_fail_cnt() ? "bug" : "clean");
		fflush(stdout);
		reboot(RB_POWER_OFF);
	}
	ksft_finished();
}
