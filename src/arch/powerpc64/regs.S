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

        .set OP_SPIN,        0
        .set OP_SYSNO,       8
        .set OP_ARG0,        16
        .set OP_ARG1,        24
        .set OP_ARG2,        32
        .set OP_ARG3,        40
        .set OP_ARG4,        48
        .set OP_ARG5,        56
        .set OP_FLAGS,       64
        .set OP_TOUCH,       72
        .set OP_SPIN_AFTER,  80
        .set OP_RET,         88
        .set FLAG_SCV,       4

        .set FRAME, 512

.macro FUNC name
        .globl  \name
        .type   \name, @function
        .p2align 4
\name:
.endm

.macro LABEL name
        .globl  \name
\name:
.endm

.macro PROLOGUE
        mflr    0
        std     0, 16(1)                /* LR save doubleword of the caller's frame: scv clobbers LR */
        stdu    1, -FRAME(1)
        std     14, 32(1)
        std     15, 40(1)
        std     16, 48(1)
        .irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        stfd    \i, 64+(\i-14)*8(1)
        .endr
        .irp i,20,21,22,23,24,25,26,27,28,29,30,31
        li      9, 208+(\i-20)*16
        stxvd2x 32+\i, 1, 9
        .endr
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
        .irp i,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        lfd     \i, 64+(\i-14)*8(1)
        .endr
        .irp i,20,21,22,23,24,25,26,27,28,29,30,31
        li      9, 208+(\i-20)*16
        lxvd2x  32+\i, 1, 9
        .endr
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
        andi.   10, 10, 2
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
        andi.   10, 10, 1
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
LABEL rt_ppc_live_begin_fpr
        WINDOW
LABEL rt_ppc_live_end_fpr
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
LABEL rt_ppc_live_begin_vmx
        WINDOW
LABEL rt_ppc_live_end_vmx
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
LABEL rt_ppc_live_begin_vsx
        WINDOW
LABEL rt_ppc_live_end_vsx
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

        .section .note.GNU-stack,"",@progbits
