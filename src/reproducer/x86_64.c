/* ---- x86_64: the windows, in assembly -----------------------------------------------------
 *
 *   void rt_window_<class>(const uint64_t *expected, uint64_t *observed, struct rt_op *op)
 *
 * loads every register of the class from `expected`, runs the window (a loop, then the
 * syscall, then another loop) and stores every register to `observed`, in one block of code:
 * nothing but the window runs between the loads and the stores.
 *
 *   void rt_clobber_<class>(const uint64_t *values)
 *
 * loads the class's registers and returns: the last act of the trigger signals' handler, so
 * that only sigreturn can bring the window's values back.
 */
#if !defined(__x86_64__)
#error "this reproducer is for x86_64: build it with an x86_64 gcc"
#endif

__asm__(
	"	.pushsection .text\n"
	/* the window: op in r13; rcx counts (syscall clobbers rcx and r11 anyway) */
	".macro RT_WINDOW\n"
	"	mov 0(%r13),%rcx\n"
	"	test %rcx,%rcx\n"
	"	jz 2f\n"
	"1:	dec %rcx\n"
	"	jnz 1b\n"
	"2:	mov 16(%r13),%rax\n"
	"	test %rax,%rax\n"
	"	js 5f\n"
	"	mov 24(%r13),%rdi\n"
	"	mov 32(%r13),%rsi\n"
	"	mov 40(%r13),%rdx\n"
	"	mov 48(%r13),%r10\n"
	"	mov 56(%r13),%r8\n"
	"	mov 64(%r13),%r9\n"
	"	syscall\n"
	"	mov %rax,80(%r13)\n"
	"5:	mov 8(%r13),%rcx\n"
	"	test %rcx,%rcx\n"
	"	jz 7f\n"
	"6:	dec %rcx\n"
	"	jnz 6b\n"
	"7:\n"
	".endm\n"
	/* rbx expected, r12 observed, r13 op; the caller's MXCSR at 0(%rsp) */
	".macro RT_PROLOGUE\n"
	"	push %rbx\n"
	"	push %r12\n"
	"	push %r13\n"
	"	sub $16,%rsp\n"
	"	stmxcsr (%rsp)\n"
	"	mov %rdi,%rbx\n"
	"	mov %rsi,%r12\n"
	"	mov %rdx,%r13\n"
	".endm\n"
	".macro RT_EPILOGUE\n"
	"	ldmxcsr (%rsp)\n"
	"	add $16,%rsp\n"
	"	pop %r13\n"
	"	pop %r12\n"
	"	pop %rbx\n"
	"	ret\n"
	".endm\n"
	"	.popsection\n");

#if RT_WITH_SSE
/* sse: xmm0-xmm15 at i*16, MXCSR at 256 */
__asm__(
	"	.pushsection .text\n"
	".macro RT_SSE_LOAD base\n"
	"	ldmxcsr 256(\\base)\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	movdqu \\i*16(\\base),%xmm\\i\n"
	"	.endr\n"
	".endm\n"
	"RT_FUNC rt_window_sse\n"
	"	RT_PROLOGUE\n"
	"	RT_SSE_LOAD %rbx\n"
	"	RT_LIVE sse\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	movdqu %xmm\\i,\\i*16(%r12)\n"
	"	.endr\n"
	"	stmxcsr 256(%r12)\n"
	"	RT_EPILOGUE\n"
	"RT_FUNC rt_clobber_sse\n"
	"	RT_SSE_LOAD %rdi\n"
	"	ret\n"
	"	.popsection\n");
RT_ASM_CLASS(sse);

RT_AVAILABLE_IF(sse, 1, NULL) /* every x86_64 CPU has SSE2 */
static const char *const rt_sse_ctl[] = { "mxcsr" };
/* MXCSR: the exception flags, DAZ, rounding control and FZ vary; every exception stays masked */
static const uint64_t rt_sse_valid[] = { 0xe07f }, rt_sse_fixed[] = { 0x1f80 };
static const struct rt_class rt_class_sse = {
	"sse", 4, 16, 2, "xmm", NULL, 1, rt_sse_ctl, rt_sse_valid, rt_sse_fixed,
	RT_ASM_ROUTINES(sse), rt_sse_unavailable, NULL, 3,
};
#endif

#if RT_WITH_AVX
/* avx: ymm0-ymm15 at i*32 */
__asm__(
	"	.pushsection .text\n"
	".macro RT_AVX_LOAD base\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	vmovdqu \\i*32(\\base),%ymm\\i\n"
	"	.endr\n"
	".endm\n"
	"RT_FUNC rt_window_avx\n"
	"	RT_PROLOGUE\n"
	"	RT_AVX_LOAD %rbx\n"
	"	RT_LIVE avx\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	vmovdqu %ymm\\i,\\i*32(%r12)\n"
	"	.endr\n"
	"	vzeroupper\n"
	"	RT_EPILOGUE\n"
	"RT_FUNC rt_clobber_avx\n"
	"	RT_AVX_LOAD %rdi\n"
	"	ret\n"
	"	.popsection\n");
RT_ASM_CLASS(avx);

static const char *rt_avx_unavailable(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx") ? NULL : "the CPU (or the kernel's XSAVE setup) has no AVX";
}
static const struct rt_class rt_class_avx = {
	"avx", 5, 16, 4, "ymm", NULL, 0, NULL, NULL, NULL,
	RT_ASM_ROUTINES(avx), rt_avx_unavailable, NULL, 3,
};
#endif

/* ---- x86_64: signal contexts -------------------------------------------------------------- */

static int rt_have_scv(void)
{
	return 0;
}

static void rt_arch_init(void)
{
}

static uintptr_t rt_ctx_pc(void *ctx)
{
	return (uintptr_t)((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
}

#ifdef REGTORTURE_INJECT
/* The positive control: change xmm3 (the low half of ymm3) in the signal frame, so sigreturn
 * restores a wrong value into the window. */
static void rt_inject(const struct rt_class *c, void *ctx)
{
	(void)c;
	fpregset_t fp = ((ucontext_t *)ctx)->uc_mcontext.fpregs;
	if (fp)
		fp->_xmm[3].element[0] ^= 1;
}
#endif

static void rt_fault_registers(struct out *o, void *ctx)
{
	const greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
	o_reg(o, "RIP", (uint64_t)g[REG_RIP]);
	o_reg(o, "RSP", (uint64_t)g[REG_RSP]);
	o_reg(o, "RFLAGS", (uint64_t)g[REG_EFL]);
	o_reg(o, "ERR", (uint64_t)g[REG_ERR]);
	o_reg(o, "TRAPNO", (uint64_t)g[REG_TRAPNO]);
	o_reg(o, "CR2", (uint64_t)g[REG_CR2]);
	o_str(o, "\n");
}
