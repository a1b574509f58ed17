/* ---- reading a wrong value ---------------------------------------------------------------- */

#define RT_NCLASSES (sizeof(rt_classes) / sizeof(rt_classes[0]))
#define RT_NWINDOWS (sizeof(rt_windows) / sizeof(rt_windows[0]))

static void o_decode(struct out *o, uint64_t v)
{
	if (v == 0) {
		o_str(o, "zero");
		return;
	}
	unsigned thread = (unsigned)(v >> 54), cls = (unsigned)(v >> 50) & 15, reg = (unsigned)(v >> 43) & 127,
		 word = (unsigned)(v >> 40) & 7;
	for (unsigned i = 0; i < RT_NCLASSES; i++) {
		const struct rt_class *c = rt_classes[i];
		if (c->id != cls || reg >= c->nregs || word >= c->wpr)
			continue;
		o_str(o, thread == RT_HANDLER_THREAD ? "the signal handler's value of " : "the value of ");
		o_regname(o, c, reg * c->wpr + word);
		if (thread != RT_HANDLER_THREAD) {
			o_str(o, " of thread ");
			o_dec(o, thread);
			o_str(o, ", iteration ");
			o_dec(o, (unsigned long)(v & 0xffffffffffull));
		}
		return;
	}
	o_str(o, "not a value of this program");
}

/* ---- signals -------------------------------------------------------------------------------- */

static uint64_t g_clobber[RT_NCLASSES][RT_MAX_WORDS] __attribute__((aligned(32)));

/* The triggers' signals: count, (positive control) corrupt the frame, clobber every register
 * of every class as the last act. sigreturn must bring the interrupted values back. */
static void trigger_handler(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	__atomic_fetch_add(&g_signals, 1, __ATOMIC_RELAXED);
#ifdef REGTORTURE_INJECT
	const struct rt_class *c = t_class;
	uintptr_t pc = rt_ctx_pc(ctx);
	if (c && pc >= (uintptr_t)c->live_begin && pc < (uintptr_t)c->live_end &&
	    !__atomic_exchange_n(&g_injected, 1, __ATOMIC_RELAXED))
		rt_inject(c, ctx);
#else
	(void)ctx;
#endif
	for (unsigned i = 0; i < RT_NCLASSES; i++)
		rt_classes[i]->clobber(g_clobber[i]);
}

static void fault_handler(int sig, siginfo_t *si, void *ctx)
{
	claim_report();
	struct out o = { .n = 0 };
	o_str(&o, "BUG: ");
	o_str(&o, sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig == SIGILL ? "SIGILL" : sig == SIGTRAP ? "SIGTRAP" : "SIGFPE");
	o_str(&o, " in thread ");
	o_dec(&o, (unsigned long)syscall(SYS_gettid));
	o_str(&o, t_checking ? " (a checking thread" : " (not a checking thread");
	o_str(&o, t_class ? ", inside a window" : ", outside the windows");
	o_str(&o, "; this program never faults on a correct kernel) at pc ");
	o_hex(&o, rt_ctx_pc(ctx));
	o_str(&o, ", si_code ");
	o_dec(&o, (unsigned long)(unsigned)si->si_code);
	o_reg(&o, "si_addr", (uint64_t)(uintptr_t)si->si_addr);
	o_str(&o, ", after ");
	o_elapsed(&o);
	o_str(&o, "\n ");
	rt_fault_registers(&o, ctx);
	o_str(&o, "REPRO-RESULT: bug after ");
	o_elapsed(&o);
	o_str(&o, ": fault at pc ");
	o_hex(&o, rt_ctx_pc(ctx));
	o_str(&o, ": ");
	o_counts(&o);
	o_str(&o, "\n");
	o_flush(&o);
	finish(1);
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

#define SIG_TGKILL SIGUSR1
#define SIG_TIMER SIGUSR2

/* ---- io_uring, by hand (no liburing) --------------------------------------------------------
 * io-wq worker creation as task_work on the checking thread: IORING_OP_SPLICE from an empty
 * pipe cannot complete inline, so io_uring punts it to the submitting thread's io-wq, where it
 * blocks; each blocked worker makes io_uring create the next one by task_work queued on the
 * submitting thread with TWA_SIGNAL (io_uring/io-wq.c: io_queue_worker_create), which the thread
 * runs on its next return to user space: inside a window. io-wq is per thread and its idle
 * workers are reused, so each checking thread lives RT_ROUND_MS and is replaced by a fresh one. */

#if RT_WITH_IO_URING
#define RT_SPLICES 128
#define RT_ROUND_MS 20

struct ring {
	int fd;
	void *sq_map, *cq_map;
	size_t sq_len, cq_len, sqes_len;
	struct io_uring_sqe *sqes;
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
	int e = 0;
	r->sq_map = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	if (r->sq_map == MAP_FAILED) {
		e = errno;
		r->sq_map = NULL;
		goto err;
	}
	if (r->cq_len) {
		r->cq_map = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
		if (r->cq_map == MAP_FAILED) {
			e = errno;
			r->cq_map = NULL;
			goto err;
		}
	}
	r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED) {
		e = errno;
		goto err;
	}
	r->sq_tail = (unsigned *)((char *)r->sq_map + p.sq_off.tail);
	r->sq_mask = (unsigned *)((char *)r->sq_map + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)((char *)r->sq_map + p.sq_off.array);
	return 0;
err:
	if (r->sq_map)
		munmap(r->sq_map, r->sq_len);
	if (r->cq_map)
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

/* Queue n splices pipe_rd -> /dev/null and submit them; the number submitted or -errno. */
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
		sqe->fd = g_devnull;
		sqe->off = (uint64_t)-1;
		sqe->splice_fd_in = pipe_rd;
		sqe->splice_off_in = (uint64_t)-1;
		sqe->len = 1;
		sqe->user_data = i;
		r->sq_array[idx] = idx;
	}
	__atomic_store_n(r->sq_tail, tail + n, __ATOMIC_RELEASE);
	long ret = syscall(SYS_io_uring_enter, r->fd, n, 0, 0, NULL, 0);
	return ret < 0 ? -errno : ret;
}
#endif

/* ---- a POSIX timer that signals one thread (raw: glibc's timer_t is not the kernel's id) ---- */

#if RT_WITH_TIMER
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
	sev.signo = SIG_TIMER;
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
#endif

/* ---- checking threads ---------------------------------------------------------------------- */

struct slot {
	unsigned index;   /* the thread number in the pattern */
	volatile int tid; /* of the checking thread alive now, 0 between two */
	uint64_t iter;
	unsigned long n;
	pthread_t th;
	void *altstack;
};

static struct slot *g_slots;

static const struct timespec rt_nap = { 0, 20 * 1000 }; /* the sleep window's 20 us */

static void mismatch(struct slot *s, const struct rt_class *c, const struct rt_window *w, const uint64_t *exp,
		     const uint64_t *obs, const uint64_t *keep)
{
	claim_report();
	unsigned n = rt_words(c), first = n, count = 0;
	for (unsigned i = 0; i < n; i++)
		if ((exp[i] ^ obs[i]) & keep[i]) {
			if (first == n)
				first = i;
			count++;
		}
	struct out o = { .n = 0 };
	o_str(&o, "BUG: register corruption: class ");
	o_str(&o, c->name);
	o_str(&o, ", window ");
	o_str(&o, w->name);
	o_str(&o, ", thread ");
	o_dec(&o, s->index);
	o_str(&o, " (tid ");
	o_dec(&o, (unsigned long)s->tid);
	o_str(&o, "), iteration ");
	o_dec(&o, (unsigned long)s->iter);
	o_str(&o, ", after ");
	o_elapsed(&o);
	o_str(&o, "; ");
	o_dec(&o, count);
	o_str(&o, " word(s) wrong:\n");
	unsigned shown = 0;
	for (unsigned i = first; i < n && shown < 8; i++) {
		if (!((exp[i] ^ obs[i]) & keep[i]))
			continue;
		shown++;
		o_str(&o, "  ");
		o_regname(&o, c, i);
		o_str(&o, ": expected ");
		o_hex(&o, exp[i]);
		o_str(&o, " observed ");
		o_hex(&o, obs[i]);
		if (i < c->nregs * c->wpr) {
			o_str(&o, " (");
			o_decode(&o, obs[i]);
			o_str(&o, ")");
		} else {
			o_str(&o, " (checked bits ");
			o_hex(&o, keep[i]);
			o_str(&o, ")");
		}
		o_str(&o, "\n");
	}
	o_str(&o, "REPRO-RESULT: bug after ");
	o_elapsed(&o);
	o_str(&o, ": ");
	o_regname(&o, c, first);
	o_str(&o, " expected ");
	o_hex(&o, exp[first]);
	o_str(&o, " observed ");
	o_hex(&o, obs[first]);
	o_str(&o, " (class ");
	o_str(&o, c->name);
	o_str(&o, ", window ");
	o_str(&o, w->name);
	o_str(&o, ")\n");
	o_flush(&o);
	finish(1);
}

static void run_window(struct slot *s, const struct rt_class *c, const struct rt_window *w)
{
	uint64_t exp[RT_MAX_WORDS] __attribute__((aligned(32)));
	uint64_t obs[RT_MAX_WORDS] __attribute__((aligned(32)));
	uint64_t keep[RT_MAX_WORDS];
	unsigned n = rt_words(c), data = c->nregs * c->wpr;
	s->iter++;
	rt_fill(c, s->index, s->iter, exp);
	memset(obs, 0, sizeof(obs));
	struct rt_op op;
	memset(&op, 0, sizeof(op));
	op.sysno = -1;
	op.spin = (uint64_t)opt_spin;
	switch (w->kind) {
	case RT_W_GETPPID:
		op.sysno = SYS_getppid;
		break;
	case RT_W_YIELD:
		op.sysno = SYS_sched_yield;
		break;
	case RT_W_SLEEP:
		op.sysno = SYS_clock_nanosleep;
		op.args[0] = CLOCK_MONOTONIC;
		op.args[2] = (uint64_t)(uintptr_t)&rt_nap;
		break;
	}
	if (w->scv)
		op.flags = RT_OP_SCV;
	t_class = c;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	c->window(exp, obs, &op);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t_class = NULL;
	s->n++;
	int bad = 0;
	for (unsigned i = 0; i < n; i++) {
		keep[i] = c->keep ? c->keep(i, w) : ~0ull;
		if (i >= data)
			keep[i] &= c->ctl_valid[i - data];
		bad |= ((exp[i] ^ obs[i]) & keep[i]) != 0;
	}
	if (bad)
		mismatch(s, c, w, exp, obs, keep);
}

static void *checking_thread(void *arg)
{
	struct slot *s = arg;
	stack_t ss = { .ss_sp = s->altstack, .ss_size = 64 * 1024, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL))
		fail("sigaltstack", errno);
	s->tid = (int)syscall(SYS_gettid);
	t_checking = 1;
	long life_ns = -1; /* the whole run */
#if RT_WITH_IO_URING
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		fail("pipe2", errno);
	struct ring r;
	int e = ring_setup(&r, RT_SPLICES);
	if (e)
		fail("io_uring_setup", -e);
	long sub = queue_splices(&r, p[0], RT_SPLICES);
	if (sub < 0 && sub != -EINTR)
		fail("io_uring_enter", (int)-sub);
	life_ns = RT_ROUND_MS * 1000000L;
#endif
#if RT_WITH_TIMER
	int timer_id;
	int te = timer_arm(s->tid, 100 * 1000, &timer_id);
	if (te)
		fail("timer_create/timer_settime", -te);
#endif
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!g_stop && (life_ns < 0 || ns_since(&t0) < life_ns)) {
		const struct rt_class *c = rt_classes[s->n % RT_NCLASSES];
		const struct rt_window *w = &rt_windows[(s->n / RT_NCLASSES) % RT_NWINDOWS];
		run_window(s, c, w);
		__atomic_fetch_add(&g_windows, 1, __ATOMIC_RELAXED);
	}
#if RT_WITH_TIMER
	syscall(SYS_timer_delete, timer_id);
#endif
	s->tid = 0;
#if RT_WITH_IO_URING
	close(p[1]); /* no writer left: every blocked splice completes */
	close(p[0]);
	ring_close(&r); /* the io-wq itself goes when this thread exits */
	__atomic_fetch_add(&g_rings, 1, __ATOMIC_RELAXED);
#endif
	return NULL;
}

/* One per slot: checking threads one after the other (each fresh one has a fresh io-wq). */
static void *slot_thread(void *arg)
{
	struct slot *s = arg;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 * 1024);
	while (!g_stop) {
		pthread_t t;
		int e = pthread_create(&t, &a, checking_thread, s);
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

#if RT_WITH_TGKILL
/* The tgkill trigger: signal every checking thread, every 50 us. */
static void *tgkill_thread(void *arg)
{
	(void)arg;
	int pid = getpid();
	struct timespec ts = { 0, 50 * 1000 };
	while (!g_stop) {
		for (long i = 0; i < opt_threads; i++) {
			int tid = g_slots[i].tid;
			if (tid > 0)
				syscall(SYS_tgkill, pid, tid, SIG_TGKILL);
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}
#endif

/* ---- setup ----------------------------------------------------------------------------------- */

static void init_setup(void)
{
	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL); /* else /dev/null must be in the initramfs */
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

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long v;
		int ok = 0;
		if (!strchr(a, '='))
			ok = !parse_num(a, &v) && v > 0 && (opt_seconds = v, 1);
		else if (!strncmp(a, "threads=", 8))
			ok = !parse_num(a + 8, &v) && v > 0 && v <= 1022 && (opt_threads = v, 1);
		else if (!strncmp(a, "spin=", 5))
			ok = !parse_num(a + 5, &v) && (opt_spin = v, 1);
		if (!ok) {
			struct out o = { .n = 0 };
			o_str(&o, "usage: ");
			o_str(&o, argv[0]);
			o_str(&o, " [SECONDS] [threads=N] [spin=N]\nREPRO-RESULT: error: bad argument '");
			o_str(&o, a);
			o_str(&o, "'\n");
			o_flush(&o);
			finish(3);
		}
	}
}

int main(int argc, char **argv)
{
	g_is_init = getpid() == 1;
	clock_gettime(CLOCK_MONOTONIC, &g_start);
	if (g_is_init)
		init_setup();
	parse_args(argc, argv);
	if (!opt_threads) {
		cpu_set_t cs;
		CPU_ZERO(&cs);
		opt_threads = sched_getaffinity(0, sizeof(cs), &cs) ? 2 : CPU_COUNT(&cs);
	}

	struct utsname u;
	memset(&u, 0, sizeof(u));
	uname(&u);
	{
		struct out o = { .n = 0 };
		o_str(&o, "repro: regtorture reproducer on Linux ");
		o_str(&o, u.release);
		o_str(&o, " ");
		o_str(&o, u.machine);
		o_str(&o, ": classes");
		for (unsigned i = 0; i < RT_NCLASSES; i++) {
			o_str(&o, i ? "," : " ");
			o_str(&o, rt_classes[i]->name);
		}
		o_str(&o, ", windows");
		for (unsigned i = 0; i < RT_NWINDOWS; i++) {
			o_str(&o, i ? "," : " ");
			o_str(&o, rt_windows[i].name);
		}
		o_str(&o, ", triggers " RT_TRIGGER_NAMES ", ");
		o_dec(&o, (unsigned long)opt_threads);
		o_str(&o, " threads, spin ");
		o_dec(&o, (unsigned long)opt_spin);
		o_str(&o, ", ");
		o_dec(&o, (unsigned long)opt_seconds);
		o_str(&o, " s");
#ifdef REGTORTURE_INJECT
		o_str(&o, " (positive control: REGTORTURE_INJECT corrupts one register through a signal frame)");
#endif
		o_str(&o, "\n");
		o_flush(&o);
	}

	rt_arch_init();
	for (unsigned i = 0; i < RT_NCLASSES; i++) {
		const char *why = rt_classes[i]->unavailable();
		if (why) {
			struct out o = { .n = 0 };
			o_str(&o, "REPRO-RESULT: error: class ");
			o_str(&o, rt_classes[i]->name);
			o_str(&o, " unavailable: ");
			o_str(&o, why);
			o_str(&o, "\n");
			o_flush(&o);
			finish(3);
		}
		rt_fill(rt_classes[i], RT_HANDLER_THREAD, 0, g_clobber[i]);
	}
	for (unsigned i = 0; i < RT_NWINDOWS; i++)
		if (rt_windows[i].scv && !rt_have_scv())
			fail("scv unavailable (AT_HWCAP2 lacks PPC_FEATURE2_SCV: needs POWER9+ and Linux 5.9+)", 0);
	g_devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (g_devnull < 0)
		fail("open /dev/null", errno);
#if RT_WITH_IO_URING
	{
		struct ring probe;
		int e = ring_setup(&probe, 4);
		if (e)
			fail("io_uring unavailable (io_uring_setup)", -e);
		ring_close(&probe);
	}
#endif
	install(SIG_TGKILL, trigger_handler, SA_RESTART);
	install(SIG_TIMER, trigger_handler, SA_RESTART);
	install(SIGSEGV, fault_handler, SA_ONSTACK);
	install(SIGBUS, fault_handler, SA_ONSTACK);
	install(SIGILL, fault_handler, SA_ONSTACK);
	install(SIGTRAP, fault_handler, SA_ONSTACK);
	install(SIGFPE, fault_handler, SA_ONSTACK);

	g_slots = calloc((size_t)opt_threads, sizeof(*g_slots));
	if (!g_slots)
		fail("calloc", errno);
	for (long i = 0; i < opt_threads; i++) {
		g_slots[i].index = (unsigned)i;
		g_slots[i].altstack = malloc(64 * 1024);
		if (!g_slots[i].altstack)
			fail("malloc", errno);
		int e = pthread_create(&g_slots[i].th, NULL, slot_thread, &g_slots[i]);
		if (e)
			fail("pthread_create", e);
	}
#if RT_WITH_TGKILL
	pthread_t aggressor;
	if (pthread_create(&aggressor, NULL, tgkill_thread, NULL))
		fail("pthread_create (tgkill)", errno);
#endif

	struct timespec tick = { 0, 50 * 1000 * 1000 };
	while (!g_stop && ns_since(&g_start) < opt_seconds * 1000000000L)
		nanosleep(&tick, NULL);
	if (!g_stop) {
		g_stop = 1;
		for (long i = 0; i < opt_threads; i++)
			pthread_join(g_slots[i].th, NULL);
#if RT_WITH_TGKILL
		pthread_join(aggressor, NULL);
#endif
	}
	if (__atomic_load_n(&g_reported, __ATOMIC_SEQ_CST)) { /* a report is being finished */
		for (;;)
			pause();
	}
	struct out o = { .n = 0 };
	o_str(&o, "REPRO-RESULT: clean after ");
	o_elapsed(&o);
	o_str(&o, ": ");
	o_counts(&o);
#ifdef REGTORTURE_INJECT
	o_str(&o, __atomic_load_n(&g_injected, __ATOMIC_RELAXED) ? " (a register was injected but not seen!)"
								 : " (no signal landed inside a window: nothing injected)");
#endif
	o_str(&o, "\n");
	o_flush(&o);
	finish(0);
}
