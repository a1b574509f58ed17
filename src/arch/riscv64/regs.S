/*
 * riscv64 register windows for regtorture: FP (f0-f31, fcsr), V (v0-v31 at the run-time
 * VLEN, then vtype, vl, vstart, vcsr) and the integer registers (gpr).
 *
 *   void rt_rv_window_<class>(const void *expected, void *observed, struct window_op *op, hi)
 *   void rt_rv_clobber_<class>(const void *values)
 *
 * See src/arch/x86_64/regs.S for the contract. Registers the FP and V windows use (WINDOW):
 * a0-a5, a7 (the syscall), t0, t1 (scratch), t3 (expected), t4 (observed), t5 (op), t6 (the
 * caller's fcsr, FP window). Linux keeps every register but a0 across `ecall`
 * (arch/riscv/kernel/traps.c: only regs->a0 is written back). The psABI makes fs0-fs11 (f8,
 * f9, f18-f27) and s0-s11 callee-saved: the window routines save and restore them, and fcsr.
 * No V register or CSR is callee-saved (the psABI's vector calling convention): the V window
 * leaves vstart at zero and vtype at e64/m8. The clobber routines save nothing: they
 * are only the last actions of a signal handler, before sigreturn restores everything.
 */
        .option arch, +v
        .text

#include "../window_op.h"

/* The window: spin, touch a page, one syscall, spin; op in t5. */
.macro WINDOW
        ld      t0, OP_SPIN(t5)
        beqz    t0, 2f
1:      addi    t0, t0, -1
        bnez    t0, 1b
2:      ld      t1, OP_FLAGS(t5)
        andi    t1, t1, FLAG_TOUCH
        beqz    t1, 3f
        ld      t0, OP_TOUCH(t5)
        li      t1, 1
        sb      t1, 0(t0)               /* first touch of a fresh page: a page fault */
3:      ld      a7, OP_SYSNO(t5)
        bltz    a7, 5f
        ld      a0, OP_ARG0(t5)
        ld      a1, OP_ARG1(t5)
        ld      a2, OP_ARG2(t5)
        ld      a3, OP_ARG3(t5)
        ld      a4, OP_ARG4(t5)
        ld      a5, OP_ARG5(t5)
        ecall
        ld      t1, OP_FLAGS(t5)
        andi    t1, t1, FLAG_CHILD_EXIT
        beqz    t1, 4f
        bnez    a0, 4f
        /* the child of fork/vfork: leave at once, writing no memory (vfork shares it) */
        li      a7, 93                  /* SYS_exit */
        li      a0, 0
        ecall
        unimp
4:      sd      a0, OP_RET(t5)
5:      ld      t0, OP_SPIN_AFTER(t5)
        beqz    t0, 7f
6:      addi    t0, t0, -1
        bnez    t0, 6b
7:
.endm

/* The window of \class, between the labels that bound its live range */
.macro LIVE class
LABEL rt_rv_live_begin_\class
        WINDOW
LABEL rt_rv_live_end_\class
.endm

/* ---------------------------------------------------------------- FP: f0-f31 at i*8, fcsr at 256 */
.macro FPR_LOAD base
        ld      t0, 256(\base)
        fscsr   t0
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        fld     f\i, \i*8(\base)
        .endr
.endm

FUNC rt_rv_window_fpr
        addi    sp, sp, -160
        .irp i,8,9,18,19,20,21,22,23,24,25,26,27
        fsd     f\i, ((\i-8)*8)(sp)     /* fs0-fs11, at slots 0-1 and 10-19 of 20 */
        .endr
        mv      t3, a0
        mv      t4, a1
        mv      t5, a2
        frcsr   t6
        FPR_LOAD t3
        LIVE    fpr
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        fsd     f\i, \i*8(t4)
        .endr
        frcsr   t0
        sd      t0, 256(t4)
        fscsr   t6
        .irp i,8,9,18,19,20,21,22,23,24,25,26,27
        fld     f\i, ((\i-8)*8)(sp)
        .endr
        addi    sp, sp, 160
        ret

FUNC rt_rv_clobber_fpr
        FPR_LOAD a0
        ret

/*
 * V: v0-v31 at i*VLENB, then vtype, vl, vstart and vcsr, one word each. The whole-register
 * loads (vl8re64.v) move eight registers each, whatever vtype and vl say, and need vstart = 0:
 * they run before vstart is set. vsetvl then sets vtype and vl = the saved vl (no more than
 * VLMAX for every vtype the layout allows, see mod.rs). After the window the CSRs are read
 * first; then vstart is cleared and the registers are stored as 64-bit elements at e64/m8
 * (every byte of each group of eight). 64-bit elements, not bytes: the memory image is the
 * same (little-endian), and QEMU's TCG moves vector memory one element at a time.
 */
/*
 * \insn (a whole-group load or store) for each group of eight registers, v0, v8, v16 and v24,
 * from or to \base: t2 = 8 * VLENB apart. Leaves t0 at the last group.
 */
.macro V_GROUPS insn, base
        mv      t0, \base
        \insn   v0, (t0)
        add     t0, t0, t2
        \insn   v8, (t0)
        add     t0, t0, t2
        \insn   v16, (t0)
        add     t0, t0, t2
        \insn   v24, (t0)
.endm

/* t0 = the CSR words of the vector layout at \base (after v0-v31), t1 = VLENB */
.macro V_CSR_WORDS base
        csrr    t1, vlenb
        slli    t2, t1, 5
        add     t0, \base, t2
.endm

/* \csr to the word at \off(t0) */
.macro V_CSR_OUT csr, off
        csrr    t2, \csr
        sd      t2, \off(t0)
.endm

.macro V_LOAD base
        csrw    vstart, zero            /* a handler may inherit the interrupted vstart */
        csrr    t1, vlenb
        slli    t2, t1, 3               /* eight registers */
        V_GROUPS vl8re64.v, \base
        add     t0, t0, t2              /* the CSR words */
        ld      t1, 0(t0)
        ld      t2, 8(t0)
        vsetvl  zero, t2, t1
        ld      t1, 24(t0)
        csrw    vcsr, t1
        ld      t1, 16(t0)
        csrw    vstart, t1              /* last: any vector instruction clears it */
.endm

FUNC rt_rv_window_vector
        mv      t3, a0
        mv      t4, a1
        mv      t5, a2
        V_LOAD  t3
        LIVE    vector
        V_CSR_WORDS t4
        V_CSR_OUT vstart, 16
        csrw    vstart, zero
        V_CSR_OUT vtype, 0
        V_CSR_OUT vl, 8
        V_CSR_OUT vcsr, 24
        slli    t2, t1, 3               /* eight registers */
        li      t1, -1
        vsetvli zero, t1, e64, m8, ta, ma       /* vl = VLMAX: every element of a group */
        V_GROUPS vse64.v, t4
        ret

FUNC rt_rv_clobber_vector
        V_LOAD  a0
        ret

/*
 * void rt_rv_first_use(void *out): the whole V state in the vector layout, read by the first V
 * instruction of a fresh thread. Where V is off (a new thread, after execve) `csrr vlenb` traps
 * and the kernel's first-use handler turns V on with the state it constructs, then runs it
 * again. The CSRs are read before anything changes them; vstart is cleared for the
 * whole-register stores (vs8r.v), which depend on neither vtype nor vl. Leaves V on, vstart 0.
 */
FUNC rt_rv_first_use
        V_CSR_WORDS a0
        V_CSR_OUT vtype, 0
        V_CSR_OUT vl, 8
        V_CSR_OUT vstart, 16
        V_CSR_OUT vcsr, 24
        csrw    vstart, zero
        slli    t2, t1, 3               /* eight registers */
        V_GROUPS vs8r.v, a0
        ret

/* ---------------------------------------------------------------- GPR: integer registers */
/*
 * layout: ra (x1), then t0-t2, s0, s1, a0-a7, s2-s11, t3-t5 (x5-x30), at i*8. sp, gp and tp
 * belong to the ABI (a signal handler needs gp and tp as they are), and t6 (x31) is the
 * window's own register (loop counter, addresses, indirect-branch targets): none holds a
 * pattern. Between the loads and the stores nothing touches another register: every decision
 * of the window (touch a page or not, which syscall path, the fork child's exit) is taken in
 * the prologue and followed with `jr t6` through addresses kept in the frame, and the window's
 * values live in the frame (sp-relative). The syscall paths load a7 (and a0-a5 when the
 * syscall takes arguments) and get a0 back, which preserved() in mod.rs masks.
 */
#include "../gpr_frame.h"

/* every register of the class, from or to \base (t6) */
.macro GPR_ALL op, base
        \op     ra, 0(\base)
        .irp r,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
        \op     x\r, ((\r-4)*8)(\base)
        .endr
.endm

FUNC rt_rv_window_gpr
        addi    sp, sp, -G_FRAME
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11
        sd      s\i, (G_SAVE + \i*8)(sp)
        .endr
        sd      ra, (G_SAVE + 96)(sp)
        sd      a2, G_OP(sp)
        sd      a1, G_OBS(sp)
        /* spins of at least 1: the loops test after the decrement */
        ld      t0, OP_SPIN(a2)
        bnez    t0, 1f
        li      t0, 1
1:      sd      t0, G_SPIN(sp)
        ld      t0, OP_SPIN_AFTER(a2)
        bnez    t0, 1f
        li      t0, 1
1:      sd      t0, G_SPIN2(sp)
        /* the page to touch, or a byte of the frame */
        ld      t1, OP_FLAGS(a2)
        addi    t0, sp, G_DUMMY
        andi    t2, t1, FLAG_TOUCH
        beqz    t2, 1f
        ld      t0, OP_TOUCH(a2)
1:      sd      t0, G_TOUCH(sp)
        /* the syscall and its arguments, copied into the frame; t3 = their OR */
        ld      t0, OP_SYSNO(a2)
        sd      t0, G_SYSNO(sp)
        li      t3, 0
        .irp i,0,1,2,3,4,5
        ld      t2, (OP_ARG0 + \i*8)(a2)
        sd      t2, (G_ARGS + \i*8)(sp)
        or      t3, t3, t2
        .endr
        /* the path after the first spin: no syscall, one without arguments (every register
           but a0 and a7 keeps its pattern), or one with its arguments loaded */
        lla     t2, .Lgpr_nosys
        bltz    t0, 2f
        lla     t2, .Lgpr_sys0
        beqz    t3, 2f
        lla     t2, .Lgpr_sys6
2:      sd      t2, G_PATH(sp)
        /* after the syscall: keep the result, or first leave if this is the fork child */
        lla     t2, .Lgpr_result
        andi    t3, t1, FLAG_CHILD_EXIT
        beqz    t3, 1f
        lla     t2, .Lgpr_forked
1:      sd      t2, G_AFTER(sp)
        sd      zero, G_RET(sp)
        mv      t6, a0
        GPR_ALL ld, t6
LABEL rt_rv_live_begin_gpr
        ld      t6, G_SPIN(sp)
1:      addi    t6, t6, -1
        bnez    t6, 1b
        ld      t6, G_TOUCH(sp)
        sb      zero, 0(t6)             /* first touch of a fresh page (or the frame's dummy) */
        ld      t6, G_PATH(sp)
        jr      t6
.Lgpr_sys0:
        ld      a7, G_SYSNO(sp)
        ecall
        ld      t6, G_AFTER(sp)
        jr      t6
.Lgpr_sys6:
        ld      a7, G_SYSNO(sp)
        ld      a0, (G_ARGS + 0)(sp)
        ld      a1, (G_ARGS + 8)(sp)
        ld      a2, (G_ARGS + 16)(sp)
        ld      a3, (G_ARGS + 24)(sp)
        ld      a4, (G_ARGS + 32)(sp)
        ld      a5, (G_ARGS + 40)(sp)
        ecall
        ld      t6, G_AFTER(sp)
        jr      t6
.Lgpr_child:
        /* the child of fork/vfork: leave at once, writing no memory (vfork shares it) */
        li      a7, 93                  /* SYS_exit */
        li      a0, 0
        ecall
        unimp
.Lgpr_forked:
        beqz    a0, .Lgpr_child
.Lgpr_result:
        sd      a0, G_RET(sp)
.Lgpr_nosys:
        ld      t6, G_SPIN2(sp)
1:      addi    t6, t6, -1
        bnez    t6, 1b
LABEL rt_rv_live_end_gpr
        ld      t6, G_OBS(sp)
        GPR_ALL sd, t6
        ld      t5, G_OP(sp)
        ld      t6, G_RET(sp)
        sd      t6, OP_RET(t5)
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11
        ld      s\i, (G_SAVE + \i*8)(sp)
        .endr
        ld      ra, (G_SAVE + 96)(sp)
        addi    sp, sp, G_FRAME
        ret

/* the signal handler's clobber: the caller-saved registers of the class but ra, t0-t5 and
   a0-a7 (s0-s11 belong to the handler's caller; sigreturn must restore them all anyway) */
FUNC rt_rv_clobber_gpr
        mv      t6, a0
        .irp r,5,6,7,10,11,12,13,14,15,16,17,28,29,30
        ld      x\r, ((\r-4)*8)(t6)
        .endr
        ret

/* VLENB, the bytes of one V register; only where the V extension is enabled */
FUNC rt_rv_vlenb
        csrr    a0, vlenb
        ret

/*
 * rt_rv_entry is the ELF entry point (build.rs: -e rt_rv_entry): the first user instruction
 * after execve for a static binary (after ld.so's for a dynamic one). It records the registers
 * as the kernel left them into rt_entry_state before glibc's _start runs: a word 1 at 0, x1-x31
 * at 8*i (x2 the entry sp), f0-f31 at 256, fcsr at 512. It uses 16 bytes below the entry sp
 * (unused: argc is at sp) to free t5/t6, puts them back, and goes to _start with sp and a0
 * (the atexit pointer) as they came; the `tail` leaves t1 changed, which _start does not read.
 * V is not read: without V (or with it off) its instructions trap, and the auxiliary vector is
 * not parsed this early. FP is usable: start_thread sets sstatus.FS to Initial.
 */
        .bss
        .balign 16
        .globl  rt_entry_state
rt_entry_state:
        .zero   520
        .text
FUNC rt_rv_entry
        addi    sp, sp, -16
        sd      t5, 0(sp)
        sd      t6, 8(sp)
        lla     t6, rt_entry_state
        sd      x1, 8(t6)
        addi    t5, sp, 16
        sd      t5, 16(t6)              /* x2: the sp the kernel gave */
        .irp i,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29
        sd      x\i, (\i*8)(t6)
        .endr
        ld      t5, 0(sp)
        sd      t5, 240(t6)             /* x30 */
        ld      t5, 8(sp)
        sd      t5, 248(t6)             /* x31 */
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        fsd     f\i, (256+\i*8)(t6)
        .endr
        frcsr   t5
        sd      t5, 512(t6)
        li      t5, 1
        sd      t5, 0(t6)
        ld      t5, 0(sp)
        ld      t6, 8(sp)
        addi    sp, sp, 16
        tail    _start

/*
 * void rt_rv_execve(const u64 regs[32], path, argv, envp): execve with every integer register
 * but x0, sp, a0-a2 and a7 loaded from regs[i] (x_i), so that what the new image finds comes
 * straight from the call, with no compiled code in between. The table pointer rides in a7,
 * which is loaded last, with the call's number. If execve returns, exit(127) by ecall (the C
 * runtime cannot run: gp and tp hold pattern values).
 */
FUNC rt_rv_execve
        mv      a7, a0
        mv      a0, a1
        mv      a1, a2
        mv      a2, a3
        .irp i,1,3,4,5,6,7,8,9,13,14,15,16,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        ld      x\i, (\i*8)(a7)
        .endr
        li      a7, 221                 /* __NR_execve */
        ecall
        li      a0, 127
        li      a7, 93                  /* __NR_exit */
        ecall

        .section .note.GNU-stack,"",%progbits
