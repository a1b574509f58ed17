/*
 * aarch64 register windows for regtorture: NEON/FP (v0-v31, FPSR, FPCR), SVE (z0-z31,
 * p0-p15, FFR at the current vector length) and the integer registers with NZCV (gpr).
 *
 *   void rt_a64_window_<class>(const void *expected, void *observed, struct window_op *op)
 *   void rt_a64_clobber_<class>(const void *values)
 *
 * See src/arch/x86_64/regs.S for the contract. Registers used by the FP/SIMD window (WINDOW):
 * x0-x5, x8 (syscall), x9 (op), x10, x11, x16 (scratch), x12 (observed), x13 (expected), x14,
 * x15 (the caller's FPCR/FPSR); the gpr window has its own, using x16 and x17 only (see its
 * section). Linux preserves every general-purpose register but x0 across svc.
 * AAPCS64 makes d8-d15 (the low halves of v8-v15/z8-z15) and FPCR callee-saved: the window
 * routines save and restore them. The clobber routines do not: they are only called as the last
 * actions of a signal handler, before sigreturn restores everything.
 */
        .arch   armv8.2-a+sve
        .text

#include "../window_op.h"

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

/*
 * \cycle, if given, is a macro run at the top of every iteration of both spin loops (the
 * sve-ssve class of sme.S flips streaming mode there); it may use x16 and NZCV, not x8-x11.
 */
.macro WINDOW cycle=
        ldr     x10, [x9, #OP_SPIN]
        cbz     x10, 2f
1:      \cycle
        subs    x10, x10, #1
        b.ne    1b
2:      ldr     x11, [x9, #OP_FLAGS]
        tbz     x11, #FLAG_TOUCH_BIT, 3f
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
        tbz     x11, #FLAG_CHILD_EXIT_BIT, 4f
        cbnz    x0, 4f
        /* the child of fork/vfork: leave at once, writing no memory (vfork shares it) */
        mov     x8, #93                 /* SYS_exit */
        mov     x0, #0
        svc     #0
        brk     #0
4:      str     x0, [x9, #OP_RET]
5:      ldr     x10, [x9, #OP_SPIN_AFTER]
        cbz     x10, 7f
6:      \cycle
        subs    x10, x10, #1
        b.ne    6b
7:
.endm

/* The window of \class, between the labels that bound its live range */
.macro LIVE class, cycle=
LABEL rt_a64_live_begin_\class
        WINDOW  \cycle
LABEL rt_a64_live_end_\class
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
        LIVE    neon
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

/* streaming=1 (the ssve class, sme.S): FFR only where streaming code may touch it (IF_NO_FFR). */
.macro SVE_LOAD base, pbase, streaming=0
        rdvl    x10, #1
        add     \pbase, \base, x10, lsl #5
        PSLOT   x16
.if \streaming
        IF_NO_FFR x10, 80f
.endif
        add     x10, \pbase, x16, lsl #4
        ldr     p0, [x10]               /* FFR's value, through p0 */
        wrffr   p0.b
80:
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        ldr     p\i, [\pbase]
        add     \pbase, \pbase, x16
        .endr
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        ldr     z\i, [\base, #\i, mul vl]
        .endr
.endm

/* z0-z31, p0-p15 and FFR (through p0) to \base, in the layout of SVE_LOAD; \pbase: scratch */
.macro SVE_STORE base, pbase, streaming=0
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        str     z\i, [\base, #\i, mul vl]
        .endr
        rdvl    x10, #1
        add     \pbase, \base, x10, lsl #5
        PSLOT   x16
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        str     p\i, [\pbase]
        add     \pbase, \pbase, x16
        .endr
.if \streaming
        pfalse  p0.b
        IF_NO_FFR x10, 82f
.endif
        rdffr   p0.b
82:     str     p0, [\pbase]
.endm

FUNC rt_a64_window_sve
        PROLOGUE
        SVE_LOAD x13, x11
        LIVE    sve
        SVE_STORE x12, x11
        EPILOGUE

FUNC rt_a64_clobber_sve
        SVE_LOAD x0, x11
        ret

/*
 * The neon-sve transition. Buffer: the SVE class's (z0-z31 at i*VL, p0-p15 and FFR in PSLOT
 * slots) then FPSR and FPCR at 32*VL + 17*PSLOT. Before the window: prime the SVE-only state
 * with values the ABI must not let through (p0-p15 and FFR all-true when the window makes a
 * syscall and rt_a64_prime_before_syscall is set (not under qemu-user, whose emulated syscall
 * leaves them alone), all-false otherwise; every z register holding its own low 128 bits replicated, a
 * tagged pattern), then write v0-v31 with NEON loads, which zero bits 128 and up of each z
 * (Arm ARM: an AdvSIMD write to a V register zeroes the rest of the Z register). The window
 * (syscall: the kernel discards the SVE state; a context switch: the next SVE instruction traps
 * and the kernel converts the FPSIMD state into SVE state) ends at the first SVE instruction,
 * which stores z0; then the rest of z, p, FFR, FPSR and FPCR.
 */
.macro NS_CTRL dst, base
        rdvl    x10, #1
        add     \dst, \base, x10, lsl #5
        PSLOT   x16
        mov     x10, #17
        madd    \dst, x16, x10, \dst
.endm

FUNC rt_a64_window_neonsve
        PROLOGUE
        ldr     x10, [x9, #OP_SYSNO]
        tbnz    x10, #63, 1f
        adrp    x10, rt_a64_prime_before_syscall
        ldr     x10, [x10, :lo12:rt_a64_prime_before_syscall]
        cbz     x10, 1f
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        ptrue   p\i\().b
        .endr
        setffr
        b       2f
1:
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        pfalse  p\i\().b
        .endr
        wrffr   p0.b
2:
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        ldr     z\i, [x13, #\i, mul vl]
        dup     z\i\().q, z\i\().q[0]
        .endr
        NS_CTRL x11, x13
        ldr     x10, [x11]
        msr     fpsr, x10
        ldr     x10, [x11, #8]
        msr     fpcr, x10
        rdvl    x10, #1
        mov     x11, x13
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        ldr     q\i, [x11]
        add     x11, x11, x10
        .endr
        LIVE    neonsve
        SVE_STORE x12, x11
        NS_CTRL x11, x12
        mrs     x10, fpsr
        str     x10, [x11]
        mrs     x10, fpcr
        str     x10, [x11, #8]
        EPILOGUE

/* the handler's clobber: the whole SVE state (v from the pattern, the rest zero), FPSR, FPCR */
FUNC rt_a64_clobber_neonsve
        mov     x13, x0
        SVE_LOAD x13, x11
        NS_CTRL x11, x13
        ldr     x10, [x11]
        msr     fpsr, x10
        ldr     x10, [x11, #8]
        msr     fpcr, x10
        ret

/* ---------------------------------------------------------------- GPR: integer registers and flags */
/*
 * layout: x0-x15 at i*8 (i = 0..15), x18 at 128, x19-x29 at 136 + (i-19)*8, NZCV at 224.
 * sp is the stack and x30 the return address; x16 and x17 (IP0/IP1) are the window's own
 * registers (loop counter, addresses, indirect-branch targets): none of them holds a pattern.
 * Between the loads and the stores nothing touches NZCV or another register: the loops count
 * with `sub` + `cbnz` (neither sets flags), every decision of the window (touch a page or not,
 * which syscall path, the fork child's exit) is taken in the prologue and followed with `br x17`
 * through addresses kept in the frame, and the window's values live in the frame (sp-relative).
 * Linux preserves every register but x0 across `svc` (and NZCV: it is part of PSTATE, restored
 * on return to user space); the syscall paths load x8 (and x0-x5 when the syscall takes
 * arguments), which preserved() in mod.rs masks.
 */
#include "../gpr_frame.h"
        .set GPR_NZCV,  224             /* byte offset of NZCV in the class buffer */

/* x0-x15 in pairs, \op (ldp or stp) at \base (not one of them) */
.macro GPR_LOW op, base
        \op     x0, x1, [\base, #0]
        \op     x2, x3, [\base, #16]
        \op     x4, x5, [\base, #32]
        \op     x6, x7, [\base, #48]
        \op     x8, x9, [\base, #64]
        \op     x10, x11, [\base, #80]
        \op     x12, x13, [\base, #96]
        \op     x14, x15, [\base, #112]
.endm

/* x18-x29 in pairs, \op (ldp or stp) at \base + \off: the class buffer (128) or the frame */
.macro GPR_HIGH op, base, off
        \op     x18, x19, [\base, #\off]
        \op     x20, x21, [\base, #\off + 16]
        \op     x22, x23, [\base, #\off + 32]
        \op     x24, x25, [\base, #\off + 48]
        \op     x26, x27, [\base, #\off + 64]
        \op     x28, x29, [\base, #\off + 80]
.endm

FUNC rt_a64_window_gpr
        sub     sp, sp, #G_FRAME
        GPR_HIGH stp, sp, G_SAVE
        str     x30, [sp, #G_SAVE + 96]
        stp     x2, x1, [sp, #G_OP]     /* op at G_OP, observed at G_OBS */
        /* spins of at least 1: the loops test after the decrement */
        ldr     x9, [x2, #OP_SPIN]
        cmp     x9, #1
        csinc   x9, x9, xzr, hs
        ldr     x10, [x2, #OP_SPIN_AFTER]
        cmp     x10, #1
        csinc   x10, x10, xzr, hs
        stp     x9, x10, [sp, #G_SPIN]
        /* the page to touch, or a byte of the frame */
        ldr     x11, [x2, #OP_FLAGS]
        add     x9, sp, #G_DUMMY
        tbz     x11, #FLAG_TOUCH_BIT, 1f
        ldr     x9, [x2, #OP_TOUCH]
1:      str     x9, [sp, #G_TOUCH]
        /* the syscall and its arguments, copied into the frame */
        ldr     x9, [x2, #OP_SYSNO]
        str     x9, [sp, #G_SYSNO]
        ldp     x12, x13, [x2, #OP_ARG0]
        stp     x12, x13, [sp, #G_ARGS]
        orr     x14, x12, x13
        ldp     x12, x13, [x2, #OP_ARG2]
        stp     x12, x13, [sp, #G_ARGS + 16]
        orr     x14, x14, x12
        orr     x14, x14, x13
        ldp     x12, x13, [x2, #OP_ARG4]
        stp     x12, x13, [sp, #G_ARGS + 32]
        orr     x14, x14, x12
        orr     x14, x14, x13
        /* the path after the first spin: no syscall, one without arguments (every register
           but x0 and x8 keeps its pattern), or one with its arguments loaded */
        adr     x15, .Lgpr_nosys
        tbnz    x9, #63, 2f
        adr     x15, .Lgpr_sys0
        cbz     x14, 2f
        adr     x15, .Lgpr_sys6
2:      str     x15, [sp, #G_PATH]
        /* after the syscall: keep the result, or first leave if this is the fork child */
        adr     x15, .Lgpr_result
        tbz     x11, #FLAG_CHILD_EXIT_BIT, 1f
        adr     x15, .Lgpr_forked
1:      str     x15, [sp, #G_AFTER]
        str     xzr, [sp, #G_RET]
        /* load: NZCV first, then every register; x16 is the base, x17 scratch */
        mov     x16, x0
        ldr     x17, [x16, #GPR_NZCV]
        msr     nzcv, x17
        GPR_LOW ldp, x16
        GPR_HIGH ldp, x16, 128
LABEL rt_a64_live_begin_gpr
        ldr     x16, [sp, #G_SPIN]
1:      sub     x16, x16, #1
        cbnz    x16, 1b
        ldr     x17, [sp, #G_TOUCH]
        strb    wzr, [x17]              /* first touch of a fresh page (or the frame's dummy) */
        ldr     x17, [sp, #G_PATH]
        br      x17
.Lgpr_sys0:
        ldr     x8, [sp, #G_SYSNO]
        svc     #0
        ldr     x17, [sp, #G_AFTER]
        br      x17
.Lgpr_sys6:
        ldr     x8, [sp, #G_SYSNO]
        ldp     x0, x1, [sp, #G_ARGS]
        ldp     x2, x3, [sp, #G_ARGS + 16]
        ldp     x4, x5, [sp, #G_ARGS + 32]
        svc     #0
        ldr     x17, [sp, #G_AFTER]
        br      x17
.Lgpr_child:
        /* the child of fork/vfork: leave at once, writing no memory (vfork shares it) */
        mov     x8, #93                 /* SYS_exit */
        mov     x0, #0
        svc     #0
        brk     #0
.Lgpr_forked:
        cbz     x0, .Lgpr_child
.Lgpr_result:
        str     x0, [sp, #G_RET]
.Lgpr_nosys:
        ldr     x16, [sp, #G_SPIN2]
1:      sub     x16, x16, #1
        cbnz    x16, 1b
LABEL rt_a64_live_end_gpr
        mrs     x17, nzcv
        ldr     x16, [sp, #G_OBS]
        str     x17, [x16, #GPR_NZCV]
        GPR_LOW stp, x16
        GPR_HIGH stp, x16, 128
        ldr     x16, [sp, #G_OP]
        ldr     x17, [sp, #G_RET]
        str     x17, [x16, #OP_RET]
        GPR_HIGH ldp, sp, G_SAVE
        ldr     x30, [sp, #G_SAVE + 96]
        add     sp, sp, #G_FRAME
        ret

/* the signal handler's clobber: the caller-saved registers x0-x15 and NZCV (x18-x29 belong to
   the handler's caller, x16/x17 are not in the class; sigreturn must restore them all anyway) */
FUNC rt_a64_clobber_gpr
        mov     x16, x0
        ldr     x17, [x16, #GPR_NZCV]
        msr     nzcv, x17
        GPR_LOW ldp, x16
        ret


/* ---------------------------------------------------------------- the process entry point */
/*
 * rt_a64_entry is the ELF entry point (build.rs: -e rt_a64_entry): the first user instruction
 * after execve for a static binary (after ld.so's for a dynamic one). It records the registers
 * as the kernel left them into rt_entry_state before glibc's _start runs: a word 1 at 0,
 * x0-x30 at 8, q0-q31 at 256, FPSR at 768, FPCR at 776. It changes nothing _start reads (sp;
 * x0, the atexit pointer) and branches there. SVE is not read: without HWCAP_SVE its
 * instructions fault, and the auxiliary vector is not parsed this early.
 */
        .bss
        .balign 16
        .globl  rt_entry_state
rt_entry_state:
        .zero   784
        .text
FUNC rt_a64_entry
        stp     x16, x17, [sp, #-16]!
        adrp    x16, rt_entry_state
        add     x16, x16, :lo12:rt_entry_state
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        str     x\i, [x16, #8 + \i*8]
        .endr
        ldr     x17, [sp]
        str     x17, [x16, #136]        /* x16 */
        ldr     x17, [sp, #8]
        str     x17, [x16, #144]        /* x17 */
        GPR_HIGH stp, x16, 152
        str     x30, [x16, #248]
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        str     q\i, [x16, #256 + \i*16]
        .endr
        mrs     x17, fpsr
        str     x17, [x16, #768]
        mrs     x17, fpcr
        str     x17, [x16, #776]
        mov     x17, #1
        str     x17, [x16]
        ldp     x16, x17, [sp], #16
        b       _start

/* The SME classes (ssve, za, tpidr2, zt0, fpmr). */
#include "sme.S"

        .section .note.GNU-stack,"",%progbits
