// SPDX-License-Identifier: GPL-2.0
/*
 * powerpc64: rt_sigreturn loses the signal frame's FP state when the thread is switched out
 * while restore_sigcontext copies it.
 *
 * restore_sigcontext() clears MSR_FP/VEC/VSX in the user MSR, then copies the frame's VMX, FP
 * and VSX registers into current->thread with user accesses that may sleep. A thread switched
 * out meanwhile is switched back in through __switch_to(), whose restore_math() sees MSR_FP
 * clear and thread.load_fp non-zero: it loads the *half-copied* thread state into the CPU and
 * sets MSR_FP again. The rest of the copy only writes memory, and the return to user space
 * does not reload (MSR_FP is set). The thread resumes with the FP registers it had when the
 * signal was delivered and FPSCR 0 (signal delivery clears thread.fp_state.fpscr for the
 * handler), not with the frame's.
 *
 * To switch the thread out at that point every time, this program puts the signal frame on a
 * sigaltstack registered with userfaultfd, and the handler drops the page that holds the
 * frame's FP registers (and everything after them, which sigreturn reads only after clearing
 * the MSR bits). sigreturn's first touch of that page faults, the monitor thread waits 2 ms and
 * puts the page back, and the thread is switched in again. On a preemptible kernel an
 * ordinary preemption in that window does the same, rarely (regtorture's default run sees it
 * on Debian's 7.2 and 7.3, which are PREEMPT, and not on 6.1 or 6.12, which are not).
 *
 * Each round: load f0-f31 = P(i) and FPSCR = A, tgkill(self); the handler writes Q(i) and B
 * into the frame's FP registers and FPSCR (a handler that changes the context it returns to,
 * as user-space schedulers and emulators do), clobbers the live registers, and returns. After
 * sigreturn the thread must hold Q and B. Control rounds do the same without the fault.
 *
 * Built and run as /init of a ppc64le guest:
 *   bash scripts/reproducer --source docs/findings/ppc64-sigreturn-fp-switch/sigreturn_switch.c \
 *       --vm KERNEL --seconds 10
 * Prints a line per kind of round and REPRO-RESULT: bug (the frame's FP state was lost) or
 * clean.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define ROUNDS 20
#define FPSCR_A 0x3ULL	/* RN = round toward -infinity */
#define FPSCR_B 0x1ULL	/* RN = round toward zero */

/*
 * window(in, out, fpscr_in, fpscr_out, pid, tid): load f0-f31 from in[] and FPSCR from
 * *fpscr_in, tgkill(pid, tid, SIGUSR1) with sc (the signal is delivered on its exit), then
 * store f0-f31 to out[] and FPSCR to *fpscr_out. f14-f31 are saved and restored (the ABI's).
 */
void window(const uint64_t *in, uint64_t *out, const uint64_t *fpscr_in, uint64_t *fpscr_out, long pid, long tid);
/* clobber(v): f0-f31 = v[], FPSCR = v[32] (the handler's own use of the registers). */
void clobber(const uint64_t *v);
__asm__(
	"	.text\n"
	"	.globl window\n"
	"	.type window,@function\n"
	"window:\n"
	"	stdu 1,-256(1)\n"
	"	.irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	stfd \\i,(\\i-14)*8+32(1)\n"
	"	.endr\n"
	"	std 4,184(1)\n"
	"	std 6,192(1)\n"
	"	lfd 0,0(5)\n"
	"	mtfsf 0xff,0\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	lfd \\i,\\i*8(3)\n"
	"	.endr\n"
	"	mr 3,7\n"
	"	mr 4,8\n"
	"	li 5,10\n" /* SIGUSR1 */
	"	li 0,250\n" /* __NR_tgkill */
	"	sc\n"
	"	ld 4,184(1)\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	stfd \\i,\\i*8(4)\n"
	"	.endr\n"
	"	mffs 0\n"
	"	ld 6,192(1)\n"
	"	stfd 0,0(6)\n"
	"	.irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	lfd \\i,(\\i-14)*8+32(1)\n"
	"	.endr\n"
	"	addi 1,1,256\n"
	"	blr\n"
	"	.size window,.-window\n"
	"	.globl clobber\n"
	"	.type clobber,@function\n"
	"clobber:\n"
	"	lfd 0,256(3)\n"
	"	mtfsf 0xff,0\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	lfd \\i,\\i*8(3)\n"
	"	.endr\n"
	"	blr\n"
	"	.size clobber,.-clobber\n");

static long page;
static char *stack_base;	/* the sigaltstack: registered with userfaultfd */
static size_t stack_size;
static int uffd;
static char *saved;		/* the dropped page's contents, put back by the monitor */
static volatile uintptr_t dropped;	/* the page the handler dropped, 0 for none */
static volatile int faults;
static volatile int drop_next;	/* the handler drops the FP page in this round */
static volatile uintptr_t fp_at;	/* where the last frame's fp_regs[0] was */
static uint64_t P[32], Q[32], R[33];

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("repro: ");
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void finish(const char *result)
{
	printf("REPRO-RESULT: %s\n", result);
	fflush(stdout);
	if (getpid() == 1) {
		sync();
		reboot(RB_POWER_OFF);
	}
	exit(strncmp(result, "bug", 3) == 0 ? 1 : strncmp(result, "clean", 5) == 0 ? 0 : 3);
}

static void handler(int sig, siginfo_t *info, void *ucv)
{
	ucontext_t *uc = ucv;
	uint64_t *fp = (uint64_t *)uc->uc_mcontext.fp_regs;

	(void)sig;
	(void)info;
	fp_at = (uintptr_t)fp;
	memcpy(fp, Q, sizeof(Q));
	fp[32] = FPSCR_B;
	clobber(R);
	if (drop_next) {
		uintptr_t p = (uintptr_t)fp & ~(uintptr_t)(page - 1);

		memcpy(saved, (void *)p, page);
		dropped = p;
		madvise((void *)p, page, MADV_DONTNEED);
	}
}

/* The monitor: put a dropped page back 2 ms after the kernel faulted on it. */
static void *monitor(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pfd = { .fd = uffd, .events = POLLIN };
		struct uffd_msg msg;

		if (poll(&pfd, 1, -1) < 0 || read(uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		uintptr_t at = msg.arg.pagefault.address & ~(uintptr_t)(page - 1);
		struct timespec ms2 = { 0, 2000000 };

		nanosleep(&ms2, NULL);
		faults++;	/* before the page is back: the faulting thread resumes after it */
		struct uffdio_copy c = { .dst = at, .src = (uintptr_t)(at == dropped ? saved : saved + page),
					 .len = page, .mode = 0 };
		if (ioctl(uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST)
			say("UFFDIO_COPY at %#lx: %s\n", (unsigned long)at, strerror(errno));
	}
	return NULL;
}

/* One round; 1 if the thread came back with the frame's FP state, 0 if not. */
static int round_once(int drop, int *stale_fprs, uint64_t *fpscr)
{
	uint64_t out[32], fin = FPSCR_A, fout = ~0ULL;

	drop_next = drop;
	window(P, out, &fin, &fout, getpid(), syscall(SYS_gettid));
	drop_next = 0;
	*fpscr = fout;
	*stale_fprs = 0;
	for (int i = 0; i < 32; i++)
		*stale_fprs += out[i] == P[i];
	return fout == FPSCR_B && memcmp(out, Q, sizeof(Q)) == 0;
}

int main(void)
{
	if (getpid() == 1) {
		mount("proc", "/proc", "proc", 0, NULL);
		mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	}
	page = sysconf(_SC_PAGESIZE);
	for (int i = 0; i < 32; i++) {
		P[i] = 0x4000000000000000ULL | (0x11ULL << 40) | i;	/* 2.0-ish doubles that name */
		Q[i] = 0x4000000000000000ULL | (0x22ULL << 40) | i;	/* who wrote them */
		R[i] = 0x4000000000000000ULL | (0x33ULL << 40) | i;
	}
	R[32] = 0x2;

	/* The altstack: 8 pages, all present, registered for missing-page faults. */
	stack_size = 8 * page;
	stack_base = mmap(NULL, stack_size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	saved = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stack_base == MAP_FAILED || saved == MAP_FAILED)
		finish("error: mmap");
	memset(stack_base, 0, stack_size + page);
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (uffd < 0) {
		say("userfaultfd: %s\n", strerror(errno));
		finish("error: no userfaultfd (CONFIG_USERFAULTFD, or not privileged)");
	}
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { (uintptr_t)stack_base, stack_size + page }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(uffd, UFFDIO_API, &api) < 0 || ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		say("userfaultfd setup: %s\n", strerror(errno));
		finish("error: userfaultfd setup");
	}
	pthread_t mon;
	pthread_create(&mon, NULL, monitor, NULL);

	struct sigaction sa = { .sa_sigaction = handler, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	sigaction(SIGUSR1, &sa, NULL);

	/* Calibrate: where does fp_regs[0] land with the whole altstack? */
	stack_t ss = { .ss_sp = stack_base, .ss_size = stack_size };
	sigaltstack(&ss, NULL);
	int stale;
	uint64_t fpscr;
	if (!round_once(0, &stale, &fpscr)) {
		say("control round before calibration lost the frame's FP state (fpscr %#llx, %d stale)\n",
		    (unsigned long long)fpscr, stale);
		finish("bug: sigreturn lost the frame's FP state without a fault");
	}
	/*
	 * Move the frame up so that the page boundary falls at most 16 bytes below fp_regs[0]:
	 * within gp_regs[44..47], which sigreturn does not read before it clears MSR_FP.
	 */
	uintptr_t boundary = (fp_at + page - 1) & ~(uintptr_t)(page - 1);
	size_t up = (boundary + 16 - fp_at) & ~(uintptr_t)15;
	ss.ss_size = stack_size + up;
	if (up > (size_t)page || sigaltstack(&ss, NULL) < 0)
		finish("error: cannot place the frame");
	round_once(0, &stale, &fpscr);
	say("page %ld bytes; the frame's fp_regs[0] at page offset %lu\n", page, (unsigned long)(fp_at & (page - 1)));
	if ((fp_at & (page - 1)) > 16)
		finish("error: the frame did not move where it was put");

	int lost = 0, control_lost = 0, stale_max = 0;
	for (int r = 0; r < ROUNDS; r++) {
		int before = faults;
		int ok = round_once(1, &stale, &fpscr);
		if (faults == before)
			say("round %d: sigreturn did not fault on the dropped page\n", r);
		if (!ok) {
			lost++;
			if (stale > stale_max)
				stale_max = stale;
			if (lost <= 3)
				say("round %d (switched out in sigreturn): FPSCR %#llx (frame %#llx), %d of 32 FPRs hold the values from before the signal%s\n",
				    r, (unsigned long long)fpscr, FPSCR_B, stale,
				    fpscr == R[32] ? " (the handler's own: it was switched out too)" : "");
		}
		if (!round_once(0, &stale, &fpscr))
			control_lost++;
	}
	say("switched out in sigreturn: %d of %d rounds lost the frame's FP state (%d page faults)\n", lost, ROUNDS, faults);
	say("control (no fault): %d of %d rounds lost it\n", control_lost, ROUNDS);
	if (lost)
		finish("bug: a thread switched out during rt_sigreturn's copy resumed with its pre-signal FP registers and FPSCR 0, not the frame's");
	finish("clean");
	return 0;
}
