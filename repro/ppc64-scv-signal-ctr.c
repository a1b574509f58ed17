// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * ppc64-scv-signal-ctr: standalone reproducer for a powerpc64 kernel bug that makes a signal
 * handler "called" through CTR = the MSR image when the signal is delivered on the scv fast
 * syscall exit. Seen on Linux 6.1 .. 6.12 (at least); found by regtorture.
 *
 *   build:  powerpc64le-linux-gnu-gcc -O2 -static -Wall -Wextra -o ppc64-scv-signal-ctr \
 *               ppc64-scv-signal-ctr.c -lpthread       (scripts/reproducer does this)
 *   run:    ./ppc64-scv-signal-ctr [SECONDS] [threads=N] [mode=nanosleep|getppid|yield]
 *               [timer_us=N] [splices=N] [round_ms=N] [sleep_us=N]
 *           or as /init of a VM: `bash scripts/reproducer --vm vmlinux`
 *   exit:   0 clean, 1 bug reproduced, 2 the CPU/kernel has no scv, 3 anything else
 *           (io_uring unavailable, an unexpected fault, a setup error). The last line is always
 *           "REPRO-RESULT: bug|clean|error ...".
 *
 * The mechanism (file and function names from linux-6.1; the code is the same up to 6.12):
 *
 * 1. scv syscalls return through a fast path that does not restore all registers.
 *    arch/powerpc/kernel/interrupt_64.S, system_call_vectored: after syscall_exit_prepare()
 *    returns r3 == 0, the exit does
 *        ld r4,_NIP(r1); ld r5,_MSR(r1); mtlr r4; mtctr r5   (rfscv returns to LR with MSR = CTR)
 *        ZEROIZE_GPRS(9, 12); RFSCV_TO_USER
 *    i.e. user space gets LR = NIP, CTR = MSR, r9-r12 = 0, and CTR/LR/r9-r12 of regs are NOT
 *    loaded. That is the scv ABI (LR, CTR, r9-r12 are volatile across scv). Only when
 *    syscall_exit_prepare() returns non-zero (_TIF_RESTOREALL) does the exit take
 *    .Lsyscall_vectored_*_restore_regs, which loads CTR, LR, XER and all GPRs from regs and
 *    returns with rfid.
 *
 * 2. Setting up a signal frame needs the full restore: arch/powerpc/kernel/signal_64.c,
 *    handle_rt_signal64() points regs->nip at the vDSO trampoline
 *    (VDSO64_SYMBOL(..., sigtramp_rt64) = __kernel_start_sigtramp_rt64), and puts the handler
 *    in regs->ctr and regs->gpr[12] (ELFv2). The trampoline
 *    (arch/powerpc/kernel/vdso/sigtramp64.S) is a single `bctrl`: it calls CTR.
 *
 * 3. arch/powerpc/kernel/interrupt.c, interrupt_exit_user_prepare_main() asks for the full
 *    restore only if _TIF_SIGPENDING was set in the flags it read BEFORE calling
 *    do_notify_resume():
 *        if (ti_flags & _TIF_SIGPENDING)
 *                ret |= _TIF_RESTOREALL;
 *        do_notify_resume(regs, ti_flags);
 *    do_notify_resume() (arch/powerpc/kernel/signal.c) calls do_signal() for
 *    _TIF_SIGPENDING | _TIF_NOTIFY_SIGNAL. With only _TIF_NOTIFY_SIGNAL set, get_signal()
 *    (kernel/signal.c) first runs task_work_run() and then, if a signal has become pending
 *    in the meantime, dequeues it and do_signal() sets up its frame -- in the same call, with
 *    _TIF_RESTOREALL never set. Back in the loop the flags are clean, so the scv fast exit
 *    returns to __kernel_start_sigtramp_rt64 with CTR = MSR, whose bctrl jumps to
 *    MSR & ~3 (e.g. 0x800000000280f030, a kernel address): SIGSEGV with
 *        NIP = CTR & ~3, CTR = MSR, LR = __kernel_sigtramp_rt64 (just after the bctrl),
 *        r12 = 0 (zeroised instead of the handler address).
 *
 * 4. What sets only _TIF_NOTIFY_SIGNAL and runs slow task_work: io_uring's io-wq
 *    (io_uring/io-wq.c). When an io-wq worker blocks and work is still queued,
 *    io_wqe_dec_running() -> io_queue_worker_create() queues create_worker_cb() on the task
 *    that owns the io-wq (the submitting thread) with task_work_add(..., TWA_SIGNAL), which
 *    sets _TIF_NOTIFY_SIGNAL (set_notify_signal()). On the submitter's next return to user
 *    space, get_signal() runs create_worker_cb() -> create_io_worker() -> create_io_thread()
 *    -> copy_process(): a fork, tens to hundreds of microseconds (more under TCG).
 *    A signal that becomes pending during that time (here: a per-thread POSIX timer with
 *    SIGEV_THREAD_ID firing every ~100 us, kernel/time/posix-timers.c -> send_sigqueue())
 *    is delivered by that same get_signal() call.
 *
 * So each thread of this program, in a loop:
 *   - starts as a fresh thread (io-wq is per task and lives until the task exits, and idle
 *     workers would be reused instead of created; a fresh thread gets a fresh io-wq),
 *   - creates an io_uring (raw io_uring_setup/io_uring_enter, rings mmap'd by hand) and queues
 *     `splices` IORING_OP_SPLICE from an empty pipe to /dev/null: io_splice() always punts to
 *     io-wq, every worker blocks in pipe_wait_readable(), and each block queues the creation
 *     of the next worker as TWA_SIGNAL task_work on this thread;
 *   - arms a POSIX timer (SIGEV_THREAD_ID: signals this thread only) whose handler counts;
 *   - for `round_ms` issues syscalls with `scv 0` (inline asm, so the fast exit is used
 *     whatever libc does), each exit running at most one worker creation;
 *   - tears down (deletes the timer, closes the pipe's write end so the splices complete,
 *     closes the ring) and exits, which destroys its io-wq.
 * A SIGSEGV/SIGILL/SIGBUS/SIGTRAP handler on an alternate stack inspects the faulting
 * context. CTR equal to the MSR image, NIP = CTR & ~3 and LR - 4 being the trampoline's
 * bctrl (0x4e800421) in the vDSO is this bug: it prints the registers and exits 1. Any other
 * fault prints the registers and exits 3.
 *
 * The fix: also set _TIF_RESTOREALL for _TIF_NOTIFY_SIGNAL, i.e.
 *        if (ti_flags & (_TIF_SIGPENDING | _TIF_NOTIFY_SIGNAL))
 *                ret |= _TIF_RESTOREALL;
 *
 * As PID 1 (the /init of an initramfs) the program mounts devtmpfs on /dev (for /dev/null and
 * /dev/console), never exits, and restarts the machine after the verdict (run QEMU with
 * -no-reboot so that this ends QEMU).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#if !defined(__powerpc64__)
#error "this reproducer is for powerpc64 (build with powerpc64le-linux-gnu-gcc)"
#endif

#ifndef PPC_FEATURE2_SCV
#define PPC_FEATURE2_SCV 0x00100000
#endif

/* Indices into uc_mcontext.gp_regs (arch/powerpc/include/uapi/asm/ptrace.h). */
enum {
	RG_R1 = 1, RG_R2 = 2, RG_R3 = 3, RG_R12 = 12, RG_NIP = 32, RG_MSR = 33, RG_ORIG_R3 = 34,
	RG_CTR = 35, RG_LNK = 36, RG_XER = 37, RG_CCR = 38, RG_TRAP = 40, RG_DAR = 41,
	RG_DSISR = 42,
};

#define INSN_BCTRL 0x4e800421u
#define MSR_PR_BIT (1ul << 14)
#define MSR_SF_BIT (1ul << 63)
/* MSR bits that may legitimately differ between two user contexts of one thread. */
#define MSR_VOLATILE_BITS ((1ul << 13) /* FP */ | (1ul << 11) /* FE0 */ | (1ul << 8) /* FE1 */ | \
			   (1ul << 25) /* VEC */ | (1ul << 23) /* VSX */ | (7ul << 32) /* TM, TS */)

#define TIMER_SIG SIGUSR1

enum mode { MODE_NANOSLEEP, MODE_GETPPID, MODE_YIELD };
static const char *const mode_names[] = { "nanosleep", "getppid", "yield" };

/* Options. */
static long opt_seconds = 30;
static long opt_threads; /* 0: number of CPUs (at least 2) */
static enum mode opt_mode = MODE_NANOSLEEP;
static long opt_timer_us = 100;
static long opt_splices = 128;
static long opt_round_ms = 20;
static long opt_sleep_us = 20;

/* State shared with the signal handlers. */
static int g_is_init;
static struct timespec g_start;
static volatile int g_stop;
static int g_reported;
static unsigned long g_ref_msr; /* MSR image of a user context, from a timer signal frame */
static unsigned long g_sigs, g_rings, g_scv, g_submitted;
static int g_devnull = -1;
static unsigned long g_vdso_lo, g_vdso_hi, g_vdso_sigtramp; /* __kernel_sigtramp_rt64: just after the bctrl */

/* ---- async-signal-safe output ---------------------------------------------------------- */

struct out {
	char b[2048];
	size_t n;
};

static void o_str(struct out *o, const char *s)
{
	while (*s && o->n < sizeof(o->b))
		o->b[o->n++] = *s++;
}

static void o_hex(struct out *o, unsigned long v)
{
	char t[19];
	t[0] = '0';
	t[1] = 'x';
	for (int i = 0; i < 16; i++)
		t[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
	t[18] = 0;
	o_str(o, t);
}

static void o_dec(struct out *o, unsigned long v)
{
	char t[21];
	int i = 20;
	t[i] = 0;
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	o_str(o, t + i);
}

static void o_reg(struct out *o, const char *name, unsigned long v)
{
	o_str(o, " ");
	o_str(o, name);
	o_str(o, "=");
	o_hex(o, v);
}

static void o_flush(struct out *o)
{
	size_t off = 0;
	while (off < o->n) {
		ssize_t w = write(1, o->b + off, o->n - off);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			break;
		}
		off += (size_t)w;
	}
	o->n = 0;
}

static void say(const char *s)
{
	struct out o = { .n = 0 };
	o_str(&o, s);
	o_str(&o, "\n");
	o_flush(&o);
}

/* Milliseconds since the start, "12.345 s". */
static void o_elapsed(struct out *o)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - g_start.tv_sec) * 1000 + (now.tv_nsec - g_start.tv_nsec) / 1000000;
	if (ms < 0)
		ms = 0;
	o_dec(o, (unsigned long)ms / 1000);
	o_str(o, ".");
	o_str(o, ms % 1000 < 100 ? (ms % 1000 < 10 ? "00" : "0") : "");
	o_dec(o, (unsigned long)ms % 1000);
	o_str(o, " s");
}

static void o_counts(struct out *o)
{
	o_dec(o, __atomic_load_n(&g_sigs, __ATOMIC_RELAXED));
	o_str(o, " timer signals, ");
	o_dec(o, __atomic_load_n(&g_rings, __ATOMIC_RELAXED));
	o_str(o, " rings, ");
	o_dec(o, __atomic_load_n(&g_scv, __ATOMIC_RELAXED));
	o_str(o, " scv syscalls");
}

/*
 * The end of the program. Exit code 0 clean, 1 bug, 2 no scv, 3 error. As PID 1, restart
 * the machine instead (QEMU -no-reboot turns that into an exit): init must never exit.
 */
static __attribute__((noreturn)) void finish(int code)
{
	if (g_is_init) {
		struct timespec ts = { 0, 300 * 1000 * 1000 }; /* let the console drain */
		nanosleep(&ts, NULL);
		reboot(RB_AUTOBOOT);
		reboot(RB_POWER_OFF);
		say("REPRO-RESULT: error: reboot failed");
		for (;;)
			pause();
	}
	syscall(SYS_exit_group, code);
	for (;;)
		;
}

static __attribute__((noreturn)) void fail(const char *what, int err)
{
	struct out o = { .n = 0 };
	o_str(&o, "REPRO-RESULT: error: ");
	o_str(&o, what);
	if (err) {
		o_str(&o, ": ");
		o_str(&o, strerror(err));
	}
	o_str(&o, "\n");
	o_flush(&o);
	finish(3);
}

/* ---- scv ----------------------------------------------------------------------------- */

/*
 * A syscall with `scv 0` (encoded as a word so that no -mcpu=power9 is needed). The scv ABI
 * (Documentation/powerpc/syscall64-abi.rst): r0 = number, r3..r8 = arguments, r3 = result
 * (-errno on error), r0 and r4..r12, LR, CTR, XER and cr0,1,5-7 are volatile.
 */
static inline long scv6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	register long r0 __asm__("r0") = nr;
	register long r3 __asm__("r3") = a1;
	register long r4 __asm__("r4") = a2;
	register long r5 __asm__("r5") = a3;
	register long r6 __asm__("r6") = a4;
	register long r7 __asm__("r7") = a5;
	register long r8 __asm__("r8") = a6;
	__asm__ __volatile__(".long 0x44000001 # scv 0"
			     : "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6), "+r"(r7), "+r"(r8)
			     :
			     : "r9", "r10", "r11", "r12", "cr0", "cr1", "cr5", "cr6", "cr7", "xer",
			       "lr", "ctr", "memory");
	return r3;
}

/* ---- the vDSO: where the signal trampoline is ------------------------------------------- */

static void vdso_init(void)
{
	unsigned long base = getauxval(AT_SYSINFO_EHDR);
	if (!base)
		return;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
	unsigned long bias = 0, hi = 0, dyn_va = 0;
	int have_load = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD) {
			if (!have_load) {
				bias = base + ph[i].p_offset - ph[i].p_vaddr;
				have_load = 1;
			}
			if (ph[i].p_vaddr + ph[i].p_memsz > hi)
				hi = ph[i].p_vaddr + ph[i].p_memsz;
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dyn_va = ph[i].p_vaddr;
		}
	}
	if (!have_load)
		return;
	g_vdso_lo = base;
	g_vdso_hi = bias + hi;
	if (!dyn_va)
		return;
	const Elf64_Sym *sym = NULL;
	const char *str = NULL;
	unsigned long nsym = 0;
	for (const Elf64_Dyn *d = (const Elf64_Dyn *)(bias + dyn_va); d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_SYMTAB)
			sym = (const Elf64_Sym *)(bias + d->d_un.d_ptr);
		else if (d->d_tag == DT_STRTAB)
			str = (const char *)(bias + d->d_un.d_ptr);
		else if (d->d_tag == DT_HASH)
			nsym = ((const Elf32_Word *)(bias + d->d_un.d_ptr))[1];
	}
	if (!sym || !str)
		return;
	if (!nsym && (const char *)sym < str) /* no DT_HASH: the symbol table ends at strtab */
		nsym = (unsigned long)(str - (const char *)sym) / sizeof(*sym);
	for (unsigned long i = 0; i < nsym; i++)
		if (sym[i].st_name && !strcmp(str + sym[i].st_name, "__kernel_sigtramp_rt64"))
			g_vdso_sigtramp = bias + sym[i].st_value;
}

static int in_vdso(unsigned long a)
{
	return g_vdso_lo && a >= g_vdso_lo && a + 4 <= g_vdso_hi;
}

/* ---- signal handlers -------------------------------------------------------------------- */

static void timer_handler(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	__atomic_fetch_add(&g_sigs, 1, __ATOMIC_RELAXED);
	if (!g_ref_msr)
		g_ref_msr = (unsigned long)((ucontext_t *)ctx)->uc_mcontext.gp_regs[RG_MSR];
}

static int same_msr(unsigned long a, unsigned long b)
{
	return b && (a & ~MSR_VOLATILE_BITS) == (b & ~MSR_VOLATILE_BITS);
}

static void fault_handler(int sig, siginfo_t *si, void *ctx)
{
	const unsigned long *g = (const unsigned long *)((ucontext_t *)ctx)->uc_mcontext.gp_regs;
	unsigned long nip = g[RG_NIP], msr = g[RG_MSR], ctr = g[RG_CTR], lr = g[RG_LNK];

	if (__atomic_exchange_n(&g_reported, 1, __ATOMIC_SEQ_CST)) {
		for (;;) /* another thread is reporting and ends the process */
			pause();
	}
	g_stop = 1;

	/* LR - 4 is the trampoline's bctrl: the fault is the first instruction of its callee. */
	int from_tramp = in_vdso(lr - 4) && *(const uint32_t *)(lr - 4) == INSN_BCTRL;
	int ctr_is_msr = same_msr(ctr, msr) || same_msr(ctr, g_ref_msr) ||
			 ((ctr & MSR_SF_BIT) && (ctr & MSR_PR_BIT) && (ctr & 1));
	int bug = from_tramp && ctr_is_msr && nip == (ctr & ~3ul);

	struct out o = { .n = 0 };
	if (bug)
		o_str(&o, "BUG: signal frame set up on scv exit without RESTOREALL: CTR=MSR, the vDSO "
			  "signal trampoline's bctrl jumped to the MSR image instead of the handler\n");
	else
		o_str(&o, "unexpected fault (not the scv/CTR=MSR pattern)\n");
	o_str(&o, "  signal ");
	o_dec(&o, (unsigned long)sig);
	o_str(&o, sig == SIGSEGV ? " (SIGSEGV)" : sig == SIGBUS ? " (SIGBUS)" : sig == SIGILL ? " (SIGILL)" : sig == SIGTRAP ? " (SIGTRAP)" : "");
	o_str(&o, " si_code=");
	o_dec(&o, (unsigned long)(unsigned int)si->si_code);
	o_reg(&o, "si_addr", (unsigned long)si->si_addr);
	o_str(&o, " after ");
	o_elapsed(&o);
	o_str(&o, "\n ");
	o_reg(&o, "NIP", nip);
	o_reg(&o, "MSR", msr);
	o_reg(&o, "CTR", ctr);
	o_reg(&o, "LR", lr);
	o_str(&o, "\n ");
	o_reg(&o, "XER", g[RG_XER]);
	o_reg(&o, "CCR", g[RG_CCR]);
	o_reg(&o, "TRAP", g[RG_TRAP]);
	o_reg(&o, "DAR", g[RG_DAR]);
	o_reg(&o, "DSISR", g[RG_DSISR]);
	o_str(&o, "\n ");
	o_reg(&o, "r1", g[RG_R1]);
	o_reg(&o, "r2", g[RG_R2]);
	o_reg(&o, "r3", g[RG_R3]);
	o_reg(&o, "r12", g[RG_R12]);
	o_reg(&o, "orig_r3", g[RG_ORIG_R3]);
	o_str(&o, "\n ");
	o_reg(&o, "user-MSR-seen-earlier", g_ref_msr);
	o_reg(&o, "timer-handler", (unsigned long)timer_handler);
	o_str(&o, "\n ");
	o_reg(&o, "vDSO", g_vdso_lo);
	o_str(&o, "..");
	o_hex(&o, g_vdso_hi);
	o_reg(&o, "__kernel_sigtramp_rt64", g_vdso_sigtramp);
	o_str(&o, "\n  checks: LR-4 is a bctrl in the vDSO: ");
	o_str(&o, from_tramp ? "yes" : "no");
	if (from_tramp && g_vdso_sigtramp)
		o_str(&o, lr == g_vdso_sigtramp ? " (LR = __kernel_sigtramp_rt64: the signal trampoline)"
						: " (but LR != __kernel_sigtramp_rt64)");
	o_str(&o, "; CTR is an MSR image: ");
	o_str(&o, ctr_is_msr ? "yes" : "no");
	o_str(&o, "; NIP == CTR & ~3: ");
	o_str(&o, nip == (ctr & ~3ul) ? "yes" : "no");
	o_str(&o, "; r12 ");
	o_str(&o, g[RG_R12] == 0 ? "== 0 (zeroised by the scv fast exit)" : "!= 0");
	o_str(&o, "\n");
	o_str(&o, bug ? "REPRO-RESULT: bug after " : "REPRO-RESULT: error: unexpected fault after ");
	o_elapsed(&o);
	o_str(&o, ": ");
	o_counts(&o);
	o_reg(&o, "NIP", nip);
	o_reg(&o, "CTR", ctr);
	o_reg(&o, "LR", lr);
	o_reg(&o, "r12", g[RG_R12]);
	o_str(&o, "\n");
	o_flush(&o);
	finish(bug ? 1 : 3);
}

/* ---- io_uring, by hand ------------------------------------------------------------------- */

struct ring {
	int fd;
	void *sq_map, *cq_map;
	size_t sq_len, cq_len;
	struct io_uring_sqe *sqes;
	size_t sqes_len;
	unsigned *sq_tail, *sq_mask, *sq_array;
	unsigned entries;
};

static int ring_setup(struct ring *r, unsigned entries)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	memset(r, 0, sizeof(*r));
	r->fd = (int)syscall(SYS_io_uring_setup, entries, &p);
	if (r->fd < 0)
		return -errno;
	r->entries = p.sq_entries;
	r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (r->cq_len > r->sq_len)
			r->sq_len = r->cq_len;
		r->cq_len = 0;
	}
	r->sq_map = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
			 IORING_OFF_SQ_RING);
	if (r->sq_map == MAP_FAILED)
		goto err;
	if (r->cq_len) { /* the CQ ring is only mapped to keep its layout honest; unused */
		r->cq_map = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
				 r->fd, IORING_OFF_CQ_RING);
		if (r->cq_map == MAP_FAILED)
			goto err;
	}
	r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		       IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		goto err;
	r->sq_tail = (unsigned *)((char *)r->sq_map + p.sq_off.tail);
	r->sq_mask = (unsigned *)((char *)r->sq_map + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)((char *)r->sq_map + p.sq_off.array);
	return 0;
err:;
	int e = errno;
	if (r->sq_map && r->sq_map != MAP_FAILED)
		munmap(r->sq_map, r->sq_len);
	if (r->cq_map && r->cq_map != MAP_FAILED)
		munmap(r->cq_map, r->cq_len);
	close(r->fd);
	return -e;
}

static void ring_close(struct ring *r)
{
	munmap(r->sqes, r->sqes_len);
	if (r->cq_len)
		munmap(r->cq_map, r->cq_len);
	munmap(r->sq_map, r->sq_len);
	close(r->fd);
}

/* Queue n splices pipe_rd -> /dev/null and submit them. Returns the number submitted. */
static long queue_splices(struct ring *r, int pipe_rd, unsigned n)
{
	unsigned tail = *r->sq_tail;
	if (n > r->entries)
		n = r->entries;
	for (unsigned i = 0; i < n; i++) {
		unsigned idx = (tail + i) & *r->sq_mask;
		struct io_uring_sqe *sqe = &r->sqes[idx];
		memset(sqe, 0, sizeof(*sqe));
		sqe->opcode = IORING_OP_SPLICE;
		sqe->fd = g_devnull;		 /* out */
		sqe->off = (uint64_t)-1;	 /* no offset on out */
		sqe->splice_fd_in = pipe_rd;	 /* in: an empty pipe, so io-wq blocks */
		sqe->splice_off_in = (uint64_t)-1;
		sqe->len = 65536;
		sqe->splice_flags = 0;
		sqe->user_data = i;
		r->sq_array[idx] = idx;
	}
	__atomic_store_n(r->sq_tail, tail + n, __ATOMIC_RELEASE);
	/* Through scv as well: its exit is one more chance. */
	return scv6(SYS_io_uring_enter, r->fd, n, 0, 0, 0, 0);
}

/* ---- POSIX timer signalling one thread, raw (glibc's timer_t is not the kernel's id) ---- */

struct k_sigevent {
	uint64_t value;
	int signo;
	int notify;
	int tid;
	int pad[11];
};

static int timer_arm(int tid, long period_ns, int *id)
{
	struct k_sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.signo = TIMER_SIG;
	sev.notify = SIGEV_THREAD_ID;
	sev.tid = tid;
	if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, id) < 0)
		return -errno;
	struct itimerspec its = {
		.it_interval = { period_ns / 1000000000, period_ns % 1000000000 },
		.it_value = { period_ns / 1000000000, period_ns % 1000000000 },
	};
	if (syscall(SYS_timer_settime, *id, 0, &its, NULL) < 0) {
		int e = errno;
		syscall(SYS_timer_delete, *id);
		return -e;
	}
	return 0;
}

/* ---- one round: a fresh thread, a fresh ring, a fresh io-wq -------------------------------- */

struct runner {
	pthread_t th;
	void *altstack;
	size_t altstack_len;
};

static long ns_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now); /* vDSO: no syscall exit */
	return (now.tv_sec - t0->tv_sec) * 1000000000L + (now.tv_nsec - t0->tv_nsec);
}

static void *round_thread(void *arg)
{
	struct runner *rn = arg;
	stack_t ss = { .ss_sp = rn->altstack, .ss_size = rn->altstack_len, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL))
		fail("sigaltstack", errno);

	int p[2];
	if (pipe2(p, O_CLOEXEC))
		fail("pipe2", errno);
	struct ring r;
	int e = ring_setup(&r, (unsigned)opt_splices);
	if (e)
		fail("io_uring_setup (round)", -e);
	int timer_id;
	e = timer_arm((int)syscall(SYS_gettid), opt_timer_us * 1000, &timer_id);
	if (e)
		fail("timer_create/timer_settime", -e);

	long sub = queue_splices(&r, p[0], (unsigned)opt_splices);
	if (sub < 0 && sub != -EINTR)
		fail("io_uring_enter", (int)-sub);
	if (sub > 0)
		__atomic_fetch_add(&g_submitted, (unsigned long)sub, __ATOMIC_RELAXED);

	struct timespec t0, nap = { 0, opt_sleep_us * 1000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned long n = 1;
	long round_ns = opt_round_ms * 1000000L;
	while (!g_stop && ns_since(&t0) < round_ns) {
		switch (opt_mode) {
		case MODE_NANOSLEEP:
			scv6(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, (long)&nap, 0, 0, 0);
			break;
		case MODE_GETPPID:
			scv6(SYS_getppid, 0, 0, 0, 0, 0, 0);
			break;
		case MODE_YIELD:
			scv6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
			break;
		}
		n++;
	}
	__atomic_fetch_add(&g_scv, n, __ATOMIC_RELAXED);

	syscall(SYS_timer_delete, timer_id);
	close(p[1]); /* no writer left: every blocked splice returns 0 */
	close(p[0]);
	ring_close(&r); /* the io-wq itself goes when this thread exits */
	__atomic_fetch_add(&g_rings, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *runner_thread(void *arg)
{
	struct runner *rn = arg;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 * 1024);
	while (!g_stop) {
		pthread_t t;
		int e = pthread_create(&t, &a, round_thread, rn);
		if (e == EAGAIN) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (e)
			fail("pthread_create", e);
		pthread_join(t, NULL);
	}
	return NULL;
}

/* ---- setup ------------------------------------------------------------------------------ */

static void init_setup(void)
{
	mkdir("/dev", 0755);
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) && errno != EBUSY) {
		/* no devtmpfs: /dev/null and /dev/console must be in the initramfs */
	}
	if (fcntl(1, F_GETFD) < 0) { /* the kernel found no /dev/console for us */
		int fd = open("/dev/console", O_RDWR | O_NOCTTY);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
	}
}

static int parse_num(const char *s, long *v)
{
	char *end;
	errno = 0;
	long x = strtol(s, &end, 10);
	if (errno || end == s || *end || x < 0)
		return -1;
	*v = x;
	return 0;
}

static void usage_error(const char *arg)
{
	struct out o = { .n = 0 };
	o_str(&o, "bad argument '");
	o_str(&o, arg);
	o_str(&o, "'\nusage: ppc64-scv-signal-ctr [SECONDS] [threads=N] [mode=nanosleep|getppid|yield] "
		  "[timer_us=N] [splices=N] [round_ms=N] [sleep_us=N]\n");
	o_flush(&o);
	fail("bad arguments", 0);
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *eq = strchr(a, '=');
		long v;
		if (!eq) {
			if (parse_num(a, &v) || v == 0)
				usage_error(a);
			opt_seconds = v;
			continue;
		}
		size_t k = (size_t)(eq - a);
		const char *val = eq + 1;
		if (k == 4 && !strncmp(a, "mode", 4)) {
			int found = 0;
			for (int m = 0; m < 3; m++)
				if (!strcmp(val, mode_names[m])) {
					opt_mode = (enum mode)m;
					found = 1;
				}
			if (!found)
				usage_error(a);
			continue;
		}
		long *dst = NULL;
		if (k == 7 && !strncmp(a, "threads", 7))
			dst = &opt_threads;
		else if (k == 8 && !strncmp(a, "timer_us", 8))
			dst = &opt_timer_us;
		else if (k == 7 && !strncmp(a, "splices", 7))
			dst = &opt_splices;
		else if (k == 8 && !strncmp(a, "round_ms", 8))
			dst = &opt_round_ms;
		else if (k == 8 && !strncmp(a, "sleep_us", 8))
			dst = &opt_sleep_us;
		else if (k == 7 && !strncmp(a, "seconds", 7))
			dst = &opt_seconds;
		if (!dst || parse_num(val, &v))
			usage_error(a);
		*dst = v;
	}
	if (opt_seconds < 1 || opt_timer_us < 1 || opt_splices < 2 || opt_splices > 4096 ||
	    opt_round_ms < 1)
		usage_error("(values: seconds>=1 timer_us>=1 2<=splices<=4096 round_ms>=1)");
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL))
		fail("sigaction", errno);
}

int main(int argc, char **argv)
{
	g_is_init = getpid() == 1;
	clock_gettime(CLOCK_MONOTONIC, &g_start);
	if (g_is_init)
		init_setup();
	parse_args(argc, argv);

	struct utsname u;
	memset(&u, 0, sizeof(u));
	uname(&u);
	if (!opt_threads) {
		cpu_set_t cs;
		CPU_ZERO(&cs);
		opt_threads = sched_getaffinity(0, sizeof(cs), &cs) ? 2 : CPU_COUNT(&cs);
		if (opt_threads < 2)
			opt_threads = 2;
	}

	{
		struct out o = { .n = 0 };
		o_str(&o, "repro: ppc64-scv-signal-ctr on Linux ");
		o_str(&o, u.release);
		o_str(&o, " ");
		o_str(&o, u.machine);
		o_str(&o, ": ");
		o_dec(&o, (unsigned long)opt_threads);
		o_str(&o, " threads, mode=");
		o_str(&o, mode_names[opt_mode]);
		if (opt_mode == MODE_NANOSLEEP) {
			o_str(&o, " sleep_us=");
			o_dec(&o, (unsigned long)opt_sleep_us);
		}
		o_str(&o, " timer_us=");
		o_dec(&o, (unsigned long)opt_timer_us);
		o_str(&o, " splices=");
		o_dec(&o, (unsigned long)opt_splices);
		o_str(&o, " round_ms=");
		o_dec(&o, (unsigned long)opt_round_ms);
		o_str(&o, ", ");
		o_dec(&o, (unsigned long)opt_seconds);
		o_str(&o, " s\n");
		o_flush(&o);
	}

	/* io_uring first: qemu-user has none, and then there is nothing to test. */
	struct ring probe;
	int e = ring_setup(&probe, 4);
	if (e) {
		struct out o = { .n = 0 };
		o_str(&o, "REPRO-RESULT: error: io_uring unavailable (io_uring_setup: ");
		o_str(&o, strerror(-e));
		o_str(&o, ")\n");
		o_flush(&o);
		finish(3);
	}
	ring_close(&probe);

	if (!(getauxval(AT_HWCAP2) & PPC_FEATURE2_SCV)) {
		say("REPRO-RESULT: error: scv not available (AT_HWCAP2 lacks PPC_FEATURE2_SCV: "
		    "needs POWER9+ and a kernel that enables scv)");
		finish(2);
	}

	g_devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (g_devnull < 0)
		fail("open /dev/null", errno);
	vdso_init();
	if (!g_vdso_lo)
		say("repro: warning: no vDSO found (AT_SYSINFO_EHDR); the kernel then uses an "
		    "on-stack trampoline and the bug pattern cannot be recognised");

	install(TIMER_SIG, timer_handler, 0);
	install(SIGSEGV, fault_handler, SA_ONSTACK);
	install(SIGBUS, fault_handler, SA_ONSTACK);
	install(SIGILL, fault_handler, SA_ONSTACK);
	install(SIGTRAP, fault_handler, SA_ONSTACK);

	struct runner *rn = calloc((size_t)opt_threads, sizeof(*rn));
	if (!rn)
		fail("calloc", errno);
	for (long i = 0; i < opt_threads; i++) {
		rn[i].altstack_len = 64 * 1024;
		rn[i].altstack = malloc(rn[i].altstack_len);
		if (!rn[i].altstack)
			fail("malloc", errno);
		e = pthread_create(&rn[i].th, NULL, runner_thread, &rn[i]);
		if (e)
			fail("pthread_create", e);
	}

	struct timespec tick = { 0, 50 * 1000 * 1000 };
	while (!g_stop && ns_since(&g_start) < opt_seconds * 1000000000L)
		nanosleep(&tick, NULL);
	if (!g_stop) {
		g_stop = 1;
		for (long i = 0; i < opt_threads; i++)
			pthread_join(rn[i].th, NULL);
	}
	if (__atomic_load_n(&g_reported, __ATOMIC_SEQ_CST)) { /* a fault handler is finishing */
		for (;;)
			pause();
	}
	struct out o = { .n = 0 };
	o_str(&o, "clean: ");
	o_counts(&o);
	o_str(&o, " (");
	o_dec(&o, __atomic_load_n(&g_submitted, __ATOMIC_RELAXED));
	o_str(&o, " splices queued)\nREPRO-RESULT: clean after ");
	o_elapsed(&o);
	o_str(&o, ": ");
	o_counts(&o);
	o_str(&o, "\n");
	o_flush(&o);
	finish(0);
}
