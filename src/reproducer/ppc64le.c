/* ---- powerpc64le: the windows, in assembly ------------------------------------------------
 *
 *   void rt_window_<class>(const uint64_t *expected, uint64_t *observed, struct rt_op *op)
 *
 * loads every register of the class from `expected`, runs the window (a bdnz loop, then the
 * syscall with `sc` or `scv 0`, then another loop) and stores every register to `observed`,
 * in one block of code: nothing but the window runs between the loads and the stores. The
 * non-volatile registers of the ELFv2 ABI that it uses are saved and restored around it.
 *
 *   void rt_clobber_<class>(const uint64_t *values)
 *
 * loads the class's registers (the volatile ones for gpr) and returns: the last act of the
 * trigger signals' handler, so that only sigreturn can bring the window's values back.
 */
#if !defined(__powerpc64__) || !defined(__LITTLE_ENDIAN__)
#error "this reproducer is for powerpc64le: build it with powerpc64le-linux-gnu-gcc"
#endif

#ifndef PPC_FEATURE2_SCV
#define PPC_FEATURE2_SCV 0x00100000
#endif
#ifndef PPC_FEATURE_HAS_VSX
#define PPC_FEATURE_HAS_VSX 0x00000080
#endif
#ifndef PPC_FEATURE_HAS_FPU
#define PPC_FEATURE_HAS_FPU 0x08000000
#endif

__asm__(
	"	.pushsection .text\n"
	/* the window: op in r14; loop with CTR; the syscall with sc or scv 0 */
	".macro RT_WINDOW\n"
	"	ld 9,0(14)\n"
	"	cmpdi 9,0\n"
	"	beq 2f\n"
	"	mtctr 9\n"
	"1:	bdnz 1b\n"
	"2:	ld 0,16(14)\n"
	"	cmpdi 0,0\n"
	"	blt 5f\n"
	"	ld 3,24(14)\n"
	"	ld 4,32(14)\n"
	"	ld 5,40(14)\n"
	"	ld 6,48(14)\n"
	"	ld 7,56(14)\n"
	"	ld 8,64(14)\n"
	"	ld 10,72(14)\n"
	"	andi. 10,10,1\n"
	"	bne 9f\n"
	"	sc\n"
	"	bns 8f\n"
	"	neg 3,3\n"
	"	b 8f\n"
	"9:	.long 0x44000001\n" /* scv 0 (a word: no -mcpu=power9 needed) */
	"8:	std 3,80(14)\n"
	"5:	ld 9,8(14)\n"
	"	cmpdi 9,0\n"
	"	beq 7f\n"
	"	mtctr 9\n"
	"6:	bdnz 6b\n"
	"7:\n"
	".endm\n"
	/* frame: r14-r16 at 32, f14-f31 at 64, v20-v31 at 208, FPSCR at 400 */
	".macro RT_PROLOGUE\n"
	"	mflr 0\n"
	"	std 0,16(1)\n" /* scv clobbers LR */
	"	stdu 1,-416(1)\n"
	"	std 14,32(1)\n"
	"	std 15,40(1)\n"
	"	std 16,48(1)\n"
	"	.irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	stfd \\i,64+(\\i-14)*8(1)\n"
	"	.endr\n"
	"	.irp i,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	li 9,208+(\\i-20)*16\n"
	"	stxvd2x 32+\\i,1,9\n"
	"	.endr\n"
	"	mffs 0\n"
	"	stfd 0,400(1)\n"
	"	mr 14,5\n"
	"	mr 15,4\n"
	"	mr 16,3\n"
	".endm\n"
	".macro RT_EPILOGUE\n"
	"	lfd 0,400(1)\n"
	"	mtfsf 0xff,0\n"
	"	.irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	lfd \\i,64+(\\i-14)*8(1)\n"
	"	.endr\n"
	"	.irp i,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	li 9,208+(\\i-20)*16\n"
	"	lxvd2x 32+\\i,1,9\n"
	"	.endr\n"
	"	ld 14,32(1)\n"
	"	ld 15,40(1)\n"
	"	ld 16,48(1)\n"
	"	addi 1,1,416\n"
	"	ld 0,16(1)\n"
	"	mtlr 0\n"
	"	blr\n"
	".endm\n"
	"	.popsection\n");

#if RT_WITH_FPR
/* fpr: f0-f31 at i*8, FPSCR at 256 */
__asm__(
	"	.pushsection .text\n"
	".macro RT_FPR_LOAD base\n"
	"	lfd 0,256(\\base)\n"
	"	mtfsf 0xff,0\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	lfd \\i,\\i*8(\\base)\n"
	"	.endr\n"
	".endm\n"
	"RT_FUNC rt_window_fpr\n"
	"	RT_PROLOGUE\n"
	"	RT_FPR_LOAD 16\n"
	"	RT_LIVE fpr\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	stfd \\i,\\i*8(15)\n"
	"	.endr\n"
	"	mffs 0\n"
	"	stfd 0,256(15)\n"
	"	RT_EPILOGUE\n"
	"RT_FUNC rt_clobber_fpr\n"
	"	RT_FPR_LOAD 3\n"
	"	blr\n"
	"	.popsection\n");
RT_ASM_CLASS(fpr);

RT_AVAILABLE_IF(fpr, getauxval(AT_HWCAP) & PPC_FEATURE_HAS_FPU, "the CPU has no FPU")
static const char *const rt_fpr_ctl[] = { "fpscr" };
/* FPSCR: rounding mode, NI, FPRF, FR, FI and the sticky OX/UX/ZX/XX (enables stay off) */
static const uint64_t rt_fpr_valid[] = { 0x1e07f007 }, rt_fpr_fixed[] = { 0 };
static const struct rt_class rt_class_fpr = {
	"fpr", 1, 32, 1, "f", NULL, 1, rt_fpr_ctl, rt_fpr_valid, rt_fpr_fixed,
	RT_ASM_ROUTINES(fpr), rt_fpr_unavailable, NULL, 3,
};
#endif

#if RT_WITH_VSX
/* vsx: vs0-vs63 at i*16 (lxvd2x: buffer bytes 0-7 are the high-order doubleword) */
__asm__(
	"	.pushsection .text\n"
	".macro RT_VSX_LOAD base\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63\n"
	"	li 9,\\i*16\n"
	"	lxvd2x \\i,\\base,9\n"
	"	.endr\n"
	".endm\n"
	"RT_FUNC rt_window_vsx\n"
	"	RT_PROLOGUE\n"
	"	RT_VSX_LOAD 16\n"
	"	RT_LIVE vsx\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63\n"
	"	li 9,\\i*16\n"
	"	stxvd2x \\i,15,9\n"
	"	.endr\n"
	"	RT_EPILOGUE\n"
	"RT_FUNC rt_clobber_vsx\n"
	"	RT_VSX_LOAD 3\n"
	"	blr\n"
	"	.popsection\n");
RT_ASM_CLASS(vsx);

RT_AVAILABLE_IF(vsx, getauxval(AT_HWCAP) & PPC_FEATURE_HAS_VSX, "the CPU has no VSX")
static const struct rt_class rt_class_vsx = {
	"vsx", 2, 64, 2, "vs", NULL, 0, NULL, NULL, NULL,
	RT_ASM_ROUTINES(vsx), rt_vsx_unavailable, NULL, 3,
};
#endif

#if RT_WITH_GPR
/*
 * gpr: r3-r12 at (i-3)*8, r14-r31 at 80+(i-14)*8, CTR 224, LR 232, XER 240, CR 248.
 * r1, r2 and r13 are the ABI's; r0, cr0 and XER[CA] are the loop machinery (`addic.` counts r0
 * down). Everything else the window needs lives in its frame, addressed from r1:
 *   32 op, 40 observed, 48 spin, 56 spin after, 64 sysno, 72 flags, 80..120 args, 128 ret,
 *   136 r3 parked, 176..319 r14-r31 saved.
 */
__asm__(
	"	.pushsection .text\n"
	"RT_FUNC rt_window_gpr\n"
	"	mflr 0\n"
	"	std 0,16(1)\n"
	"	mfcr 0\n"
	"	stw 0,8(1)\n" /* cr2-cr4 are non-volatile */
	"	stdu 1,-336(1)\n"
	"	.irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	std \\i,176+(\\i-14)*8(1)\n"
	"	.endr\n"
	"	std 5,32(1)\n"
	"	std 4,40(1)\n"
	"	ld 6,0(5)\n"
	"	cmpdi 6,0\n"
	"	bne 1f\n"
	"	li 6,1\n" /* at least 1: the loop counts down to zero */
	"1:	std 6,48(1)\n"
	"	ld 6,8(5)\n"
	"	cmpdi 6,0\n"
	"	bne 1f\n"
	"	li 6,1\n"
	"1:	std 6,56(1)\n"
	"	ld 6,16(5)\n"
	"	std 6,64(1)\n"
	"	ld 6,72(5)\n"
	"	std 6,72(1)\n"
	"	.irp i,0,1,2,3,4,5\n"
	"	ld 6,24+\\i*8(5)\n"
	"	std 6,80+\\i*8(1)\n"
	"	.endr\n"
	"	li 0,0\n"
	"	std 0,128(1)\n"
	"	ld 0,224(3)\n"
	"	mtctr 0\n"
	"	ld 0,232(3)\n"
	"	mtlr 0\n"
	"	ld 0,240(3)\n"
	"	mtxer 0\n"
	"	ld 0,248(3)\n"
	"	mtcrf 0xff,0\n"
	"	.irp i,4,5,6,7,8,9,10,11,12\n"
	"	ld \\i,(\\i-3)*8(3)\n"
	"	.endr\n"
	"	.irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	ld \\i,80+(\\i-14)*8(3)\n"
	"	.endr\n"
	"	ld 3,0(3)\n"
	"	.globl rt_live_begin_gpr\n"
	"rt_live_begin_gpr:\n"
	"	ld 0,48(1)\n"
	"1:	addic. 0,0,-1\n"
	"	bne 1b\n"
	"	ld 0,64(1)\n"
	"	cmpdi 0,0\n"
	"	blt 4f\n"
	"	.irp i,3,4,5,6,7,8\n"
	"	ld \\i,80+(\\i-3)*8(1)\n"
	"	.endr\n"
	"	ld 0,72(1)\n"
	"	andi. 0,0,1\n"
	"	ld 0,64(1)\n"
	"	bne 2f\n"
	"	sc\n"
	"	bns 3f\n"
	"	neg 3,3\n"
	"	b 3f\n"
	"2:	.long 0x44000001\n" /* scv 0 */
	"3:	std 3,128(1)\n"
	"4:	ld 0,56(1)\n"
	"1:	addic. 0,0,-1\n"
	"	bne 1b\n"
	"	.globl rt_live_end_gpr\n"
	"rt_live_end_gpr:\n"
	"	std 3,136(1)\n"
	"	ld 3,40(1)\n"
	"	.irp i,4,5,6,7,8,9,10,11,12\n"
	"	std \\i,(\\i-3)*8(3)\n"
	"	.endr\n"
	"	.irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	std \\i,80+(\\i-14)*8(3)\n"
	"	.endr\n"
	"	mfctr 0\n"
	"	std 0,224(3)\n"
	"	mflr 0\n"
	"	std 0,232(3)\n"
	"	mfxer 0\n"
	"	std 0,240(3)\n"
	"	mfcr 0\n"
	"	std 0,248(3)\n"
	"	ld 0,136(1)\n"
	"	std 0,0(3)\n"
	"	ld 4,32(1)\n"
	"	ld 0,128(1)\n"
	"	std 0,80(4)\n"
	"	.irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	ld \\i,176+(\\i-14)*8(1)\n"
	"	.endr\n"
	"	addi 1,1,336\n"
	"	ld 0,16(1)\n"
	"	mtlr 0\n"
	"	lwz 0,8(1)\n"
	"	mtcrf 0x38,0\n"
	"	blr\n"
	/* the handler's clobber: the volatile registers (r3-r12, CTR, XER, cr0, cr1, cr5-cr7) */
	"RT_FUNC rt_clobber_gpr\n"
	"	ld 0,224(3)\n"
	"	mtctr 0\n"
	"	ld 0,240(3)\n"
	"	mtxer 0\n"
	"	ld 0,248(3)\n"
	"	mtcrf 0xc7,0\n"
	"	.irp i,4,5,6,7,8,9,10,11,12\n"
	"	ld \\i,(\\i-3)*8(3)\n"
	"	.endr\n"
	"	ld 3,0(3)\n"
	"	blr\n"
	"	.popsection\n");
RT_ASM_CLASS(gpr);

RT_AVAILABLE_IF(gpr, 1, NULL)
static const char *const rt_gpr_names[] = {
	"r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r14", "r15", "r16", "r17", "r18",
	"r19", "r20", "r21", "r22", "r23", "r24", "r25", "r26", "r27", "r28", "r29", "r30", "r31", "ctr", "lr",
};
static const char *const rt_gpr_ctl[] = { "xer", "cr" };
/* XER: SO, OV and the byte count (CA is the loop's); CR: cr1-cr7 (cr0 is the loop's) */
static const uint64_t rt_gpr_valid[] = { 0xc000007f, 0x0fffffff }, rt_gpr_fixed[] = { 0, 0 };

/* What a syscall may change (Documentation/arch/powerpc/syscall64-abi.rst): with sc r3-r12,
 * CTR, XER and cr0; with scv 0 also LR, cr1 and cr5-cr7. */
static uint64_t rt_gpr_keep(unsigned word, const struct rt_window *w)
{
	if (w->kind == RT_W_SPIN)
		return ~0ull;
	if (word < 10 || word == 28 || word == 30) /* r3-r12, ctr, xer */
		return 0;
	if (w->scv && word == 29) /* lr */
		return 0;
	if (w->scv && word == 31) /* cr: cr2-cr4 only */
		return 0x00fff000;
	return ~0ull;
}
static const struct rt_class rt_class_gpr = {
	"gpr", 3, 30, 1, NULL, rt_gpr_names, 2, rt_gpr_ctl, rt_gpr_valid, rt_gpr_fixed,
	RT_ASM_ROUTINES(gpr), rt_gpr_unavailable, rt_gpr_keep,
	10, /* r14 */
};
#endif

/* ---- powerpc64le: signal contexts -------------------------------------------------------- */

/* indices into uc_mcontext.gp_regs (arch/powerpc/include/uapi/asm/ptrace.h) */
enum { RG_R1 = 1, RG_R12 = 12, RG_R14 = 14, RG_NIP = 32, RG_MSR = 33, RG_CTR = 35, RG_LNK = 36, RG_TRAP = 40, RG_DAR = 41 };
#define INSN_BCTRL 0x4e800421u

static unsigned long g_vdso_lo, g_vdso_hi;

static int rt_have_scv(void)
{
	return (getauxval(AT_HWCAP2) & PPC_FEATURE2_SCV) != 0;
}

static void rt_arch_init(void)
{
	unsigned long base = getauxval(AT_SYSINFO_EHDR);
	if (!base)
		return;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
	unsigned long lo = 0, hi = 0;
	int seen = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (!seen) {
			lo = base + ph[i].p_offset - ph[i].p_vaddr;
			seen = 1;
		}
		if (ph[i].p_vaddr + ph[i].p_memsz > hi)
			hi = ph[i].p_vaddr + ph[i].p_memsz;
	}
	if (seen) {
		g_vdso_lo = base;
		g_vdso_hi = lo + hi;
	}
}

static uintptr_t rt_ctx_pc(void *ctx)
{
	return (uintptr_t)((ucontext_t *)ctx)->uc_mcontext.gp_regs[RG_NIP];
}

#ifdef REGTORTURE_INJECT
/* The positive control: change one register in the signal frame, so sigreturn restores a
 * wrong value into the window. */
static void rt_inject(const struct rt_class *c, void *ctx)
{
	mcontext_t *m = &((ucontext_t *)ctx)->uc_mcontext;
	if (c->id == 3) { /* gpr: r14 */
		m->gp_regs[RG_R14] ^= 1;
	} else { /* fpr: f3; vsx: vs3's high doubleword, which is f3 */
		uint64_t v;
		memcpy(&v, &m->fp_regs[3], 8);
		v ^= 1;
		memcpy(&m->fp_regs[3], &v, 8);
	}
}
#endif

/* A fault: the registers a kernel developer wants, and whether it is the known pattern of a
 * signal frame set up on a fast syscall exit without a full register restore (CTR holds the
 * MSR image or 0, LR points just after the vDSO signal trampoline's bctrl). */
static void rt_fault_registers(struct out *o, void *ctx)
{
	const unsigned long *g = (const unsigned long *)((ucontext_t *)ctx)->uc_mcontext.gp_regs;
	unsigned long nip = g[RG_NIP], msr = g[RG_MSR], ctr = g[RG_CTR], lr = g[RG_LNK];
	o_reg(o, "NIP", nip);
	o_reg(o, "MSR", msr);
	o_reg(o, "CTR", ctr);
	o_reg(o, "LR", lr);
	o_reg(o, "r1", g[RG_R1]);
	o_reg(o, "r12", g[RG_R12]);
	o_reg(o, "TRAP", g[RG_TRAP]);
	o_reg(o, "DAR", g[RG_DAR]);
	o_str(o, "\n");
	int lr_tramp = g_vdso_lo && lr - 4 >= g_vdso_lo && lr <= g_vdso_hi && *(const uint32_t *)(lr - 4) == INSN_BCTRL;
	int ctr_msr = (ctr & (1ul << 63)) && (ctr & (1ul << 14)) && (ctr & 1); /* SF, PR, LE */
	o_str(o, "  LR-4 is a bctrl in the vDSO (the signal trampoline's call of the handler): ");
	o_str(o, lr_tramp ? "yes" : "no");
	o_str(o, "; CTR is an MSR image: ");
	o_str(o, ctr_msr ? "yes" : ctr == 0 ? "no, CTR is 0" : "no");
	o_str(o, "; r12: ");
	o_str(o, g[RG_R12] ? "not 0" : "0");
	o_str(o, "\n");
	if (lr_tramp && (ctr_msr || ctr == 0) && nip == (ctr & ~3ul))
		o_str(o, "  this is the pattern of a signal frame set up on a fast syscall exit without a full "
			 "register restore (powerpc: CTR = MSR after scv, 0 after sc): the handler was never called\n");
}
