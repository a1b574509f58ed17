/*
 * powerpc64le register windows for regtorture: FPR (f0-f31, FPSCR), VMX (v0-v31, VSCR) and VSX
 * (vs0-vs63, FPSCR, VSCR).
 *
 *   void rt_ppc_window_<class>(const void *expected, void *observed, struct window_op *op)
 *   void rt_ppc_clobber_<class>(const void *values)
 *
 * See src/arch/x86_64/regs.S for the contract. PowerPC inline assembly is not stable in the Rust
 * this builds with, hence this file. POWER8 instructions (ISA 2.07) at most.
 *
 * Registers of the window: r14 (op), r15 (observed), r16 (expected), r0 and r3-r10 (syscall,
 * scratch), ctr, and lr (which `scv 0` clobbers: the prologue saves it in the ABI's LR slot). The Linux powerpc syscall ABI preserves r14-r31 and every FP/VMX/VSX register
 * across `sc`. The ELFv2 ABI makes r14-r31, f14-f31 and v20-v31 non-volatile, and FPSCR/VSCR
 * control bits preserved: the window routines save them in their stack frame and restore them.
 * The clobber routines do not: they are only the last actions of a signal handler.
 *
 * Vector registers are moved with lxvd2x/stxvd2x: a round trip through them keeps the bytes of
 * the buffer; in little-endian mode buffer bytes 0-7 are the register's high-order doubleword.
 */
        .machine power8
        .abiversion 2
        .text

#include "../window_op.h"

        .set FRAME, 512

/* f14-f31 and v20-v31, the non-volatile ones: \fop (stfd, lfd) and \vop (stxvd2x, lxvd2x) at their slots of the frame */
.macro NV_FP_VMX fop, vop
        .irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        \fop    \i, 64+(\i-14)*8(1)
        .endr
        .irp i,20,21,22,23,24,25,26,27,28,29,30,31
        li      9, 208+(\i-20)*16
        \vop    32+\i, 1, 9
        .endr
.endm

.macro PROLOGUE
        mflr    0
        std     0, 16(1)                /* LR save doubleword of the caller's frame: scv clobbers LR */
        stdu    1, -FRAME(1)
        std     14, 32(1)
        std     15, 40(1)
        std     16, 48(1)
        NV_FP_VMX stfd, stxvd2x
        mffs    0
        stfd    0, 400(1)
        mfvscr  0
        li      9, 416
        stxvd2x 32, 1, 9
        mr      14, 5
        mr      15, 4
        mr      16, 3
.endm

.macro EPILOGUE
        li      9, 416
        lxvd2x  32, 1, 9
        mtvscr  0
        lfd     0, 400(1)
        mtfsf   0xff, 0
        NV_FP_VMX lfd, lxvd2x
        ld      14, 32(1)
        ld      15, 40(1)
        ld      16, 48(1)
        addi    1, 1, FRAME
        ld      0, 16(1)
        mtlr    0
        blr
.endm

.macro WINDOW
        ld      9, OP_SPIN(14)
        cmpdi   9, 0
        beq     2f
        mtctr   9
1:      bdnz    1b
2:      ld      10, OP_FLAGS(14)
        andi.   10, 10, FLAG_TOUCH
        beq     3f
        ld      9, OP_TOUCH(14)
        li      10, 1
        stb     10, 0(9)                /* first touch of a fresh page: a page fault */
3:      ld      0, OP_SYSNO(14)
        cmpdi   0, 0
        blt     5f
        ld      3, OP_ARG0(14)
        ld      4, OP_ARG1(14)
        ld      5, OP_ARG2(14)
        ld      6, OP_ARG3(14)
        ld      7, OP_ARG4(14)
        ld      8, OP_ARG5(14)
        ld      10, OP_FLAGS(14)
        andi.   10, 10, FLAG_SCV
        bne     9f
        sc
        bns     8f
        neg     3, 3                    /* an error: -errno, as on the other architectures */
        b       8f
9:      .long   0x44000001              /* scv 0: returns -errno itself; clobbers LR, CTR, XER, r0, r4-r12 */
8:      ld      10, OP_FLAGS(14)
        andi.   10, 10, FLAG_CHILD_EXIT
        beq     4f
        cmpdi   3, 0
        bne     4f
        /* the child of fork/vfork: leave at once, writing no memory (vfork shares it) */
        li      0, 1                    /* SYS_exit */
        li      3, 0
        sc
        trap
4:      std     3, OP_RET(14)
5:      ld      9, OP_SPIN_AFTER(14)
        cmpdi   9, 0
        beq     7f
        mtctr   9
6:      bdnz    6b
7:
.endm

/* The window of \class, between the labels that bound its live range */
.macro LIVE class
LABEL rt_ppc_live_begin_\class
        WINDOW
LABEL rt_ppc_live_end_\class
.endm

/* FPSCR from the word at \off(\base), through f0 */
.macro SET_FPSCR base, off
        lfd     0, \off(\base)
        mtfsf   0xff, 0
.endm
/* FPSCR's low word to \off(\base), through f0 */
.macro GET_FPSCR base, off
        mffs    0
        addi    9, \base, \off
        stfiwx  0, 0, 9
.endm
/* VSCR from the word at \off(\base), through v0 */
.macro SET_VSCR base, off
        lwz     9, \off(\base)
        mtvsrwz 32, 9
        vspltw  0, 0, 1
        mtvscr  0
.endm
/* VSCR to the word at \off(\base), through v0 */
.macro GET_VSCR base, off
        mfvscr  0
        vspltw  0, 0, 3
        mfvsrwz 9, 32
        stw     9, \off(\base)
.endm

/* ---------------------------------------------------------------- FPR: f0-f31 at i*8, FPSCR at 256 */
.macro FPR_LOAD base
        SET_FPSCR \base, 256
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        lfd     \i, \i*8(\base)
        .endr
.endm

FUNC rt_ppc_window_fpr
        PROLOGUE
        FPR_LOAD 16
        LIVE    fpr
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        stfd    \i, \i*8(15)
        .endr
        GET_FPSCR 15, 256
        EPILOGUE

FUNC rt_ppc_clobber_fpr
        FPR_LOAD 3
        blr

/* ---------------------------------------------------------------- VMX: v0-v31 at i*16, VSCR at 512 */
.macro VMX_LOAD base
        SET_VSCR \base, 512
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        li      9, \i*16
        lxvd2x  32+\i, \base, 9
        .endr
.endm

FUNC rt_ppc_window_vmx
        PROLOGUE
        VMX_LOAD 16
        LIVE    vmx
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        li      9, \i*16
        stxvd2x 32+\i, 15, 9
        .endr
        GET_VSCR 15, 512
        EPILOGUE

FUNC rt_ppc_clobber_vmx
        VMX_LOAD 3
        blr

/* ---------------------------------------------------------------- VSX: vs0-vs63 at i*16, FPSCR at 1024, VSCR at 1032 */
.macro VSX_LOAD base
        SET_FPSCR \base, 1024
        SET_VSCR \base, 1032
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
        li      9, \i*16
        lxvd2x  \i, \base, 9
        .endr
.endm

FUNC rt_ppc_window_vsx
        PROLOGUE
        VSX_LOAD 16
        LIVE    vsx
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
        li      9, \i*16
        stxvd2x \i, 15, 9
        .endr
        GET_FPSCR 15, 1024
        GET_VSCR 15, 1032
        EPILOGUE

FUNC rt_ppc_clobber_vsx
        VSX_LOAD 3
        blr


/* ---------------------------------------------------------------- the fp-vmx-vsx transition */
/*
 * layout: f0-f31 at i*16 (doubleword 0 of vs0-vs31; the other doubleword, which an FP load
 * leaves undefined, is not checked), v0-v31 at 512+i*16 (vs32-vs63, in lvx byte order: buffer
 * bytes 0-7 are the low-order doubleword), FPSCR at 1024, VSCR at 1032. Loaded only with FP
 * (lfd, mtfsf) and VMX (lvx, mtvscr) instructions; the window gives the units up (a syscall
 * that sleeps or yields: MSR_FP/VEC/VSX cleared on a context switch, then restore_math or the
 * unavailable interrupts load_up_fpu/load_up_altivec/load_up_vsx); the first instruction after
 * it is a VSX store of vs0: every register is read back through the VSX view.
 */
.macro FVV_LOAD base
        SET_FPSCR \base, 1024
        SET_VSCR \base, 1032
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        lfd     \i, \i*16(\base)
        .endr
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        li      9, 512+\i*16
        lvx     \i, \base, 9
        .endr
.endm

FUNC rt_ppc_window_fpvmxvsx
        PROLOGUE
        FVV_LOAD 16
        LIVE    fpvmxvsx
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        li      9, \i*16
        stxvd2x \i, 15, 9
        .endr
        /* vs32-vs63 with doublewords swapped back to lvx order, then stored */
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        xxswapd 32+\i, 32+\i
        li      9, 512+\i*16
        stxvd2x 32+\i, 15, 9
        .endr
        GET_FPSCR 15, 1024
        GET_VSCR 15, 1032
        EPILOGUE

FUNC rt_ppc_clobber_fpvmxvsx
        FVV_LOAD 3
        blr


/* ---------------------------------------------------------------- GPR: integer and branch registers */
/*
 * layout: r3-r12 at (i-3)*8 (0-72), r14-r31 at 80+(i-14)*8 (80-216), CTR 224, LR 232, XER 240,
 * CR 248. r1 (stack), r2 (TOC) and r13 (thread pointer) are the ABI's; r0, CR field 0 and
 * XER[CA] are the window's loop machinery (`addic.` counts r0 down and sets cr0 and CA; the
 * syscall number goes in r0 anyway): no pattern there. Every other value of the window lives in
 * the frame, addressed from r1, and every decision is a compare of r0 into cr0, so nothing
 * else is touched between the loads and the stores.
 */
        .set G_OP,      32
        .set G_OBS,     40
        .set G_SPIN,    48
        .set G_SPIN2,   56
        .set G_TOUCH,   64
        .set G_DUMMY,   72
        .set G_SYSNO,   80
        .set G_ARGS,    88
        .set G_HASSYS,  136
        .set G_SCV,     144
        .set G_CHILD,   152
        .set G_RET,     160
        .set G_PARK,    168
        .set G_NV,      176
        .set G_FRAME,   336

/* r4-r12, \op (ld, std) at their slots of the class buffer at r3 */
.macro GPR_R4_R12 op
        .irp i,4,5,6,7,8,9,10,11,12
        \op     \i, (\i-3)*8(3)
        .endr
.endm
/* r14-r31, \op (ld, std) at \off(\base): the class buffer (80(3)) or the frame (G_NV(1)) */
.macro GPR_R14_R31 op, off, base
        .irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        \op     \i, \off+(\i-14)*8(\base)
        .endr
.endm
/* CTR, LR (if \lr), XER and CR (the fields of \crmask) from the class buffer at r3, through r0 */
.macro GPR_SPR_LOAD crmask, lr
        ld      0, 224(3)
        mtctr   0
        .if \lr
        ld      0, 232(3)
        mtlr    0
        .endif
        ld      0, 240(3)
        mtxer   0
        ld      0, 248(3)
        mtcrf   \crmask, 0
.endm

FUNC rt_ppc_window_gpr
        mflr    0
        std     0, 16(1)
        mfcr    0
        stw     0, 8(1)                 /* the ELFv2 CR save word: cr2-cr4 are non-volatile */
        stdu    1, -G_FRAME(1)
        GPR_R14_R31 std, G_NV, 1
        std     5, G_OP(1)
        std     4, G_OBS(1)
        ld      6, OP_SPIN(5)
        cmpdi   6, 0
        bne     1f
        li      6, 1                    /* spins of at least 1: the loop counts down to zero */
1:      std     6, G_SPIN(1)
        ld      6, OP_SPIN_AFTER(5)
        cmpdi   6, 0
        bne     1f
        li      6, 1
1:      std     6, G_SPIN2(1)
        ld      7, OP_FLAGS(5)
        addi    6, 1, G_DUMMY           /* the page to touch, or a byte of the frame */
        andi.   0, 7, FLAG_TOUCH
        beq     1f
        ld      6, OP_TOUCH(5)
1:      std     6, G_TOUCH(1)
        li      6, 0
        andi.   0, 7, FLAG_SCV
        beq     1f
        li      6, 1
1:      std     6, G_SCV(1)
        li      6, 0
        andi.   0, 7, FLAG_CHILD_EXIT
        beq     1f
        li      6, 1
1:      std     6, G_CHILD(1)
        ld      6, OP_SYSNO(5)
        std     6, G_SYSNO(1)
        li      0, 0
        cmpdi   6, 0
        blt     1f
        li      0, 1
1:      std     0, G_HASSYS(1)
        .irp i,0,1,2,3,4,5
        ld      6, OP_ARG0+\i*8(5)
        std     6, G_ARGS+\i*8(1)
        .endr
        li      0, 0
        std     0, G_RET(1)
        /* load: the special registers through r0, then every GPR, r3 (the base) last */
        GPR_SPR_LOAD 0xff, 1
        GPR_R4_R12 ld
        GPR_R14_R31 ld, 80, 3
        ld      3, 0(3)
LABEL rt_ppc_live_begin_gpr
        ld      0, G_SPIN(1)
1:      addic.  0, 0, -1
        bne     1b
        ld      0, G_TOUCH(1)
        stbx    31, 0, 0                /* first touch of a fresh page (or the frame's dummy) */
        ld      0, G_HASSYS(1)
        cmpdi   0, 0
        beq     .Lgpr_nosys
        /* the syscall: arguments in r3-r8 (the syscall ABI makes r3-r12 volatile anyway) */
        .irp i,3,4,5,6,7,8
        ld      \i, G_ARGS+(\i-3)*8(1)
        .endr
        ld      0, G_SCV(1)
        cmpdi   0, 0
        ld      0, G_SYSNO(1)
        bne     2f
        sc
        bns     3f
        neg     3, 3
        b       3f
2:      .long   0x44000001              /* scv 0 */
3:      std     3, G_RET(1)
        ld      0, G_CHILD(1)
        cmpdi   0, 0
        beq     .Lgpr_nosys
        cmpdi   3, 0
        bne     .Lgpr_nosys
        /* the child of fork/vfork: leave at once, writing no memory (vfork shares it) */
        li      0, 1                    /* SYS_exit */
        li      3, 0
        sc
        trap
.Lgpr_nosys:
        ld      0, G_SPIN2(1)
1:      addic.  0, 0, -1
        bne     1b
LABEL rt_ppc_live_end_gpr
        std     3, G_PARK(1)
        ld      3, G_OBS(1)
        GPR_R4_R12 std
        GPR_R14_R31 std, 80, 3
        mfctr   0
        std     0, 224(3)
        mflr    0
        std     0, 232(3)
        mfxer   0
        std     0, 240(3)
        mfcr    0
        std     0, 248(3)
        ld      0, G_PARK(1)
        std     0, 0(3)
        ld      4, G_OP(1)
        ld      0, G_RET(1)
        std     0, OP_RET(4)
        GPR_R14_R31 ld, G_NV, 1
        addi    1, 1, G_FRAME
        ld      0, 16(1)
        mtlr    0
        lwz     0, 8(1)
        mtcrf   0x38, 0                 /* cr2-cr4 back */
        blr

/* the signal handler's clobber: the volatile registers only (r3-r12, CTR, XER, cr0, cr1,
   cr5-cr7); sigreturn must restore them all anyway */
FUNC rt_ppc_clobber_gpr
        GPR_SPR_LOAD 0xc7, 0
        GPR_R4_R12 ld
        ld      3, 0(3)
        blr


/* ---------------------------------------------------------------- the process entry point */
/*
 * rt_ppc_entry is the ELF entry point (build.rs: -e rt_ppc_entry): the first user instruction
 * after execve for a static binary (after ld.so's for a dynamic one). The kernel enters with
 * r12 = the entry address (ELFv2); the stub records the registers as the kernel left them into
 * rt_entry_state before glibc's _start runs: a word 1 at 0, r0-r31 at 8, f0-f31 at 264, v0-v31
 * (stvx) at 528, vs0-vs31 (stxvd2x) at 1040, FPSCR (mffs) at 1552, VSCR (mfvscr) in the 16
 * bytes at 1568. The first VMX and VSX instructions here meet MSR_VEC/MSR_VSX off after exec: the
 * kernel's unavailable interrupts (load_up_altivec, load_up_vsx) construct that state. Then it
 * puts back what it used (r10, r11, f0, v0), sets r12 to _start, which computes its TOC from it,
 * and branches there through CTR.
 */
        .bss
        .balign 16
        .globl  rt_entry_state
rt_entry_state:
        .zero   1584
        .text
FUNC rt_ppc_entry
0:      std     11, -8(1)
        addis   11, 12, (rt_entry_state - 0b)@ha
        addi    11, 11, (rt_entry_state - 0b)@l
        .irp i,0,1,2,3,4,5,6,7,8,9,10,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        std     \i, 8+\i*8(11)
        .endr
        ld      10, -8(1)
        std     10, 8+11*8(11)
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        stfd    \i, 264+\i*8(11)
        .endr
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        li      10, 528+\i*16
        stvx    \i, 11, 10
        .endr
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        li      10, 1040+\i*16
        stxvd2x \i, 11, 10
        .endr
        mffs    0
        stfd    0, 1552(11)
        lfd     0, 264(11)
        mfvscr  0
        li      10, 1568
        stvx    0, 11, 10
        li      10, 528
        lvx     0, 11, 10
        li      10, 1
        std     10, 0(11)
        ld      10, 8+10*8(11)
        ld      11, -8(1)
        addis   12, 12, (_start - 0b)@ha
        addi    12, 12, (_start - 0b)@l
        /* to the global entry point: a direct `b _start` would take the local one, which skips
           the TOC setup from r12 */
        mtctr   12
        bctr

        .section .note.GNU-stack,"",@progbits
