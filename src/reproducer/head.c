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

/* ---- what a window does: read by the assembly below, offsets fixed ---------------------- */

struct rt_op {
	uint64_t spin;       /*  0: loop iterations before the syscall */
	uint64_t spin_after; /*  8: and after it */
	int64_t sysno;       /* 16: the syscall, or -1 for none */
	uint64_t args[6];    /* 24..64 */
	uint64_t flags;      /* 72: RT_OP_SCV */
	int64_t ret;         /* 80: the syscall's result (-errno on error) */
};
#define RT_OP_SCV 1

enum { RT_W_SPIN, RT_W_GETPPID, RT_W_YIELD, RT_W_SLEEP };

struct rt_window {
	const char *name;
	int kind;
	int scv; /* issue the syscall with powerpc's `scv 0` instead of `sc` */
};

#define RT_MAX_WORDS 130

/* A register class: its registers as 64-bit words of a buffer the assembly loads and stores. */
struct rt_class {
	const char *name;
	unsigned id;                    /* in the pattern: 1..15 */
	unsigned nregs;                 /* data registers */
	unsigned wpr;                   /* 64-bit words per data register */
	const char *prefix;             /* data register i is <prefix><i>, unless reg_names */
	const char *const *reg_names;
	unsigned nctl;                  /* control registers, one word each, after the data */
	const char *const *ctl_names;
	const uint64_t *ctl_valid;      /* the bits of a control register that vary and are checked */
	const uint64_t *ctl_fixed;      /* bits always set */
	void (*window)(const uint64_t *expected, uint64_t *observed, struct rt_op *op);
	void (*clobber)(const uint64_t *values);
	const char *live_begin, *live_end; /* the window's code with the registers loaded */
	const char *(*unavailable)(void);  /* NULL when the CPU has the class, else why not */
	uint64_t (*keep)(unsigned word, const struct rt_window *w); /* bits the window keeps; NULL: all */
	unsigned inject_reg;            /* the register the positive control corrupts */
};

/* A class's assembly as C sees it: the window and clobber routines (RT_FUNC) and the labels that
 * bound the window's live range (RT_LIVE), declared, and named in a struct rt_class. */
#define RT_ASM_CLASS(c) \
	void rt_window_##c(const uint64_t *, uint64_t *, struct rt_op *); \
	void rt_clobber_##c(const uint64_t *); \
	extern const char rt_live_begin_##c[], rt_live_end_##c[]
#define RT_ASM_ROUTINES(c) rt_window_##c, rt_clobber_##c, rt_live_begin_##c, rt_live_end_##c
/* A class's availability check: NULL when `cond` holds, else why not. */
#define RT_AVAILABLE_IF(c, cond, why) \
	static const char *rt_##c##_unavailable(void) { return (cond) ? NULL : (why); }

/* The assembler macros every architecture's windows use: a global function, and the window
 * (the architecture's RT_WINDOW) between the labels rt_live_begin_<name> and rt_live_end_<name>. */
__asm__(
	".macro RT_FUNC name\n"
	"	.globl \\name\n"
	"	.type \\name,@function\n"
	"	.p2align 4\n"
	"\\name:\n"
	".endm\n"
	".macro RT_LIVE name\n"
	"	.globl rt_live_begin_\\name\n"
	"rt_live_begin_\\name:\n"
	"	RT_WINDOW\n"
	"	.globl rt_live_end_\\name\n"
	"rt_live_end_\\name:\n"
	".endm\n");

static unsigned rt_words(const struct rt_class *c)
{
	return c->nregs * c->wpr + c->nctl;
}

/* ---- state ------------------------------------------------------------------------------ */

static int g_is_init;
static struct timespec g_start;
static volatile int g_stop;
static int g_reported;
static unsigned long g_windows, g_signals, g_rings;
#ifdef REGTORTURE_INJECT
static unsigned long g_injected;
#endif
static int g_devnull = -1;
static long opt_seconds = RT_SECONDS, opt_threads = RT_THREADS, opt_spin = RT_SPIN;
static __thread const struct rt_class *t_class; /* the class whose window this thread runs */
static __thread int t_checking;                 /* this is a checking thread */

/* ---- async-signal-safe output ------------------------------------------------------------ */

struct out {
	char b[4096];
	size_t n;
};

static void o_str(struct out *o, const char *s)
{
	while (*s && o->n < sizeof(o->b))
		o->b[o->n++] = *s++;
}

static void o_hex(struct out *o, uint64_t v)
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

static void o_reg(struct out *o, const char *name, uint64_t v)
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

static long ns_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now); /* the vDSO: no syscall */
	return (now.tv_sec - t0->tv_sec) * 1000000000L + (now.tv_nsec - t0->tv_nsec);
}

/* "12.345 s" since the start */
static void o_elapsed(struct out *o)
{
	long ms = ns_since(&g_start) / 1000000;
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
	o_dec(o, __atomic_load_n(&g_windows, __ATOMIC_RELAXED));
	o_str(o, " windows, ");
	o_dec(o, __atomic_load_n(&g_signals, __ATOMIC_RELAXED));
	o_str(o, " trigger signals, ");
	o_dec(o, __atomic_load_n(&g_rings, __ATOMIC_RELAXED));
	o_str(o, " io_uring rounds");
}

/*
 * The end. Exit code 0 clean, 1 bug, 3 setup error. As PID 1 (the /init of a VM) restart the
 * machine instead: init must never exit (run QEMU with -no-reboot to make that an exit).
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

/* Only one thread reports; any other that finds something waits for the end. */
static void claim_report(void)
{
	if (__atomic_exchange_n(&g_reported, 1, __ATOMIC_SEQ_CST)) {
		for (;;)
			pause();
	}
	g_stop = 1;
}

/* ---- the pattern: every value says whose it is -------------------------------------------
 * bits 63-54 thread (1023: the signal handler), 53-50 class, 49-43 register, 42-40 word of
 * the register, 39-0 iteration. Control registers take mixed bits within their valid mask. */

#define RT_HANDLER_THREAD 1023u

static uint64_t rt_value(unsigned thread, unsigned cls, unsigned reg, unsigned word, uint64_t iter)
{
	return (uint64_t)(thread & 1023) << 54 | (uint64_t)(cls & 15) << 50 | (uint64_t)(reg & 127) << 43 |
	       (uint64_t)(word & 7) << 40 | (iter & 0xffffffffffull);
}

static uint64_t rt_mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void rt_fill(const struct rt_class *c, unsigned thread, uint64_t iter, uint64_t *buf)
{
	unsigned n = c->nregs * c->wpr;
	for (unsigned i = 0; i < n; i++)
		buf[i] = rt_value(thread, c->id, i / c->wpr, i % c->wpr, iter);
	for (unsigned k = 0; k < c->nctl; k++)
		buf[n + k] = c->ctl_fixed[k] | (rt_mix(iter << 10 | thread) >> (8 * k) & c->ctl_valid[k]);
}

static void o_regname(struct out *o, const struct rt_class *c, unsigned word)
{
	unsigned n = c->nregs * c->wpr;
	if (word >= n) {
		o_str(o, c->ctl_names[word - n]);
		return;
	}
	unsigned reg = word / c->wpr;
	if (c->reg_names) {
		o_str(o, c->reg_names[reg]);
	} else {
		o_str(o, c->prefix);
		o_dec(o, reg);
	}
	if (c->wpr > 1) {
		o_str(o, " (64-bit word ");
		o_dec(o, word % c->wpr);
		o_str(o, ")");
	}
}
