/*
 * aarch64 register windows for regtorture: NEON/FP (v0-v31, FPSR, FPCR) and SVE (z0-z31,
 * p0-p15, FFR at the current vector length).
 *
 *   void rt_a64_window_<class>(const void *expected, void *observed, struct window_op *op)
 *   void rt_a64_clobber_<class>(const void *values)
 *
 * See src/arch/x86_64/regs.S for the contract. Registers used by the window: x0-x5, x8
 * (syscall), x9 (op), x10, x11, x16 (scratch), x12 (observed), x13 (expected), x14, x15 (the
 * caller's FPCR/FPSR). Linux preserves every general-purpose register but x0 across svc.
 * AAPCS64 makes d8-d15 (the low halves of v8-v15/z8-z15) and FPCR callee-saved: the window
 * routines save and restore them. The clobber routines do not: they are only called as the last
 * actions of a signal handler, before sigreturn restores everything.
 */
        .arch   armv8.2-a+sve
        .text

        .set OP_SPIN,        0
        .set OP_SYSNO,       8
        .set OP_ARG0,        16
        .set OP_ARG2,        32
        .set OP_ARG4,        48
        .set OP_FLAGS,       64
        .set OP_TOUCH,       72
        .set OP_SPIN_AFTER,  80
        .set OP_RET,         88

.macro FUNC name
        .globl  \name
        .type   \name, %function
        .p2align 4
\name:
.endm

.macro LABEL name
        .globl  \name
\name:
.endm

.macro PROLOGUE
        stp     d8, d9, [sp, #-64]!
        stp     d10, d11, [sp, #16]
        stp     d12, d13, [sp, #32]
        stp     d14, d15, [sp, #48]
        mov     x13, x0
        mov     x12, x1
        mov     x9, x2
        mrs     x14, fpcr
        mrs     x15, fpsr
.endm

.macro EPILOGUE
        msr     fpcr, x14
        msr     fpsr, x15
        ldp     d10, d11, [sp, #16]
        ldp     d12, d13, [sp, #32]
        ldp     d14, d15, [sp, #48]
        ldp     d8, d9, [sp], #64
        ret
.endm

.macro WINDOW
        ldr     x10, [x9, #OP_SPIN]
        cbz     x10, 2f
1:      subs    x10, x10, #1
        b.ne    1b
2:      ldr     x11, [x9, #OP_FLAGS]
        tbz     x11, #1, 3f
        ldr     x10, [x9, #OP_TOUCH]
        mov     w11, #1
        strb    w11, [x10]              /* first touch of a fresh page: a page fault */
3:      ldr     x8, [x9, #OP_SYSNO]
        tbnz    x8, #63, 5f
        ldp     x0, x1, [x9, #OP_ARG0]
        ldp     x2, x3, [x9, #OP_ARG2]
        ldp     x4, x5, [x9, #OP_ARG4]
        svc     #0
        ldr     x11, [x9, #OP_FLAGS]
        tbz     x11, #0, 4f
        cbnz    x0, 4f
        /* the child of fork/vfork: leave at once, writing no memory (vfork shares it) */
        mov     x8, #93                 /* SYS_exit */
        mov     x0, #0
        svc     #0
        brk     #0
4:      str     x0, [x9, #OP_RET]
5:      ldr     x10, [x9, #OP_SPIN_AFTER]
        cbz     x10, 7f
6:      subs    x10, x10, #1
        b.ne    6b
7:
.endm

/* ---------------------------------------------------------------- NEON: v0-v31, FPSR at 512, FPCR at 520 */
.macro NEON_LOAD base
        ldr     x10, [\base, #512]
        msr     fpsr, x10
        ldr     x10, [\base, #520]
        msr     fpcr, x10
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        ldr     q\i, [\base, #\i*16]
        .endr
.endm

FUNC rt_a64_window_neon
        PROLOGUE
        NEON_LOAD x13
LABEL rt_a64_live_begin_neon
        WINDOW
LABEL rt_a64_live_end_neon
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        str     q\i, [x12, #\i*16]
        .endr
        mrs     x10, fpsr
        str     x10, [x12, #512]
        mrs     x10, fpcr
        str     x10, [x12, #520]
        EPILOGUE

FUNC rt_a64_clobber_neon
        NEON_LOAD x0
        ret

/*
 * SVE: z0-z31 at i*VL; then p0-p15 and FFR, each in a slot of VL/8 bytes rounded up to a
 * multiple of 8 (so that every predicate starts on a 64-bit word of the buffer).
 */
.macro PSLOT reg
        rdvl    \reg, #1
        lsr     \reg, \reg, #3
        add     \reg, \reg, #7
        and     \reg, \reg, #-8
.endm

.macro SVE_LOAD base, pbase
        rdvl    x10, #1
        add     \pbase, \base, x10, lsl #5
        PSLOT   x16
        add     x10, \pbase, x16, lsl #4
        ldr     p0, [x10]               /* FFR's value, through p0 */
        wrffr   p0.b
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        ldr     p\i, [\pbase]
        add     \pbase, \pbase, x16
        .endr
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        ldr     z\i, [\base, #\i, mul vl]
        .endr
.endm

FUNC rt_a64_window_sve
        PROLOGUE
        SVE_LOAD x13, x11
LABEL rt_a64_live_begin_sve
        WINDOW
LABEL rt_a64_live_end_sve
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        str     z\i, [x12, #\i, mul vl]
        .endr
        rdvl    x10, #1
        add     x11, x12, x10, lsl #5
        PSLOT   x16
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        str     p\i, [x11]
        add     x11, x11, x16
        .endr
        rdffr   p0.b
        str     p0, [x11]
        EPILOGUE

FUNC rt_a64_clobber_sve
        SVE_LOAD x0, x11
        ret

        .section .note.GNU-stack,"",%progbits
