/*
 * aarch64 SME register windows (Documentation/arch/arm64/sme.rst), included at the end of
 * regs.S: its PROLOGUE, EPILOGUE, WINDOW, PSLOT and the window ABI of window_op.h apply.
 *
 *   ssve:   z0-z31 at i*SVL, then p0-p15 and FFR in slots of PSLOT(SVL) bytes, loaded and
 *           stored in streaming mode (SMSTART SM). FFR only where FA64 lets streaming code
 *           touch it (rt_a64_ssve_ffr set): otherwise its slot is stored as zero, which is
 *           what SMSTART leaves there.
 *   za:     the ZA array, SVL horizontal vectors of SVL bytes (ZA[0] .. ZA[SVL-1]).
 *   za-sm:  the same, with streaming mode on in the window as well.
 *   tpidr2: TPIDR2_EL0 at 0.
 *   zt0:    ZT0 (SME2), 64 bytes (encoded with .inst: binutils 2.40 has no SME2).
 *   fpmr:   FPMR at 0 (system register S3_3_C4_C4_2: binutils 2.40 has no name for it).
 *   sve-za: a transition in the SVE class's buffer (z0-z31, p0-p15, FFR at the SVE VL).
 *
 * The SME windows keep FPCR/FPSR in x6/x7 instead of x14/x15 where they need w12-w15 as ZA
 * slice indices (x6 and x7 are not touched by WINDOW). Each window leaves the SME state it
 * used off (SMSTOP) or as it found it (TPIDR2, FPMR): the Rust code between windows runs
 * outside streaming mode with ZA off.
 */
        .arch   armv9-a+sme

/* rt_a64_ssve_ffr: whether streaming mode may touch FFR (HWCAP2_SME_FA64), a static of sme.rs. */
/* Branch to \label when streaming code may not touch FFR; uses \tmp. */
.macro IF_NO_FFR tmp, label
        adrp    \tmp, rt_a64_ssve_ffr
        ldr     \tmp, [\tmp, :lo12:rt_a64_ssve_ffr]
        cbz     \tmp, \label
.endm

/* Move SVL-byte rows between ZA and \base (\op: ldr or str); uses x11, x16, w14. */
.macro ZA_ROWS op, base
        rdsvl   x16, #1
        mov     x11, \base
        mov     w14, #0
81:     \op     za[w14, 0], [x11]
        add     x11, x11, x16
        add     w14, w14, #1
        cmp     w14, w16
        b.ne    81b
.endm

/* Keep FPCR/FPSR (x14/x15, see PROLOGUE) in x6/x7 while w14 indexes ZA, and back. */
.macro FPC_ASIDE
        mov     x6, x14
        mov     x7, x15
.endm
.macro FPC_BACK
        mov     x14, x6
        mov     x15, x7
.endm

/* ---------------------------------------------------------------- ssve: streaming SVE */
FUNC rt_a64_window_ssve
        PROLOGUE
        smstart sm
        SVE_LOAD x13, x11, streaming=1
        LIVE    ssve
        /*
         * A syscall leaves streaming mode (sme.rst section 4, "System call behaviour"): then
         * nothing is stored. What the kernel keeps of the streaming registers there is
         * disputed (see preserved() in sme.rs) and none of it is checked.
         */
        mrs     x10, svcr
        tbz     x10, #0, 84f
        SVE_STORE x12, x11, streaming=1
        smstop  sm
84:     EPILOGUE

/*
 * The handler's clobber: streaming registers loaded with other values, then streaming mode
 * left again (SMSTOP zeroes them): sigreturn must bring back PSTATE.SM and every streaming
 * register from the frame's sve_context (SVE_SIG_FLAG_SM).
 */
FUNC rt_a64_clobber_ssve
        smstart sm
        SVE_LOAD x0, x11, streaming=1
        smstop  sm
        ret

/* ---------------------------------------------------------------- za: the ZA array */
FUNC rt_a64_window_za
        PROLOGUE
        FPC_ASIDE
        smstart za
        ZA_ROWS ldr, x13
        LIVE    za
        ZA_ROWS str, x12
        smstop  za
        FPC_BACK
        EPILOGUE

/* ZA on with other values: sigreturn must restore the frame's za_context rows. */
FUNC rt_a64_clobber_za
        smstart za
        ZA_ROWS ldr, x0
        ret

/*
 * za-sm: ZA loaded, then SMSTART SM, so that the window runs with PSTATE.SM and PSTATE.ZA both
 * on: a signal's frame holds a streaming sve_context and a za_context, and a syscall leaves
 * streaming mode in the kernel (fp_user_discard: SMSTOP SM), which must keep ZA (sme.rst
 * section 4). SMSTOP SM after the window (a no-op where the syscall left streaming mode), then
 * ZA is stored. SMSTART and SMSTOP SM set FPSR: the caller's is kept aside (FPC_ASIDE).
 */
FUNC rt_a64_window_zasm
        PROLOGUE
        FPC_ASIDE
        smstart za
        ZA_ROWS ldr, x13
        smstart sm
        LIVE    zasm
        smstop  sm
        ZA_ROWS str, x12
        smstop  za
        FPC_BACK
        EPILOGUE

/* The handler's clobber: the za clobber (the handler starts with SM and ZA off). */
FUNC rt_a64_clobber_zasm
        smstart za
        ZA_ROWS ldr, x0
        ret

/* ---------------------------------------------------------------- tpidr2: TPIDR2_EL0 */
FUNC rt_a64_window_tpidr2
        PROLOGUE
        mrs     x6, tpidr2_el0
        ldr     x10, [x13]
        msr     tpidr2_el0, x10
        LIVE    tpidr2
        mrs     x10, tpidr2_el0
        str     x10, [x12]
        msr     tpidr2_el0, x6
        EPILOGUE

FUNC rt_a64_clobber_tpidr2
        ldr     x10, [x0]
        msr     tpidr2_el0, x10
        ret

/* ---------------------------------------------------------------- zt0 (SME2) */
/* LDR ZT0, [Xn] is 0xe11f8000 | Rn << 5; STR ZT0, [Xn] is 0xe13f8000 | Rn << 5. */
FUNC rt_a64_window_zt0
        PROLOGUE
        smstart za
        .inst   0xe11f8000 | (13 << 5)  /* ldr zt0, [x13] */
        LIVE    zt0
        .inst   0xe13f8000 | (12 << 5)  /* str zt0, [x12] */
        smstop  za
        EPILOGUE

FUNC rt_a64_clobber_zt0
        smstart za
        .inst   0xe11f8000 | (0 << 5)   /* ldr zt0, [x0] */
        ret

/* ---------------------------------------------------------------- fpmr (FP8) */
FUNC rt_a64_window_fpmr
        PROLOGUE
        mrs     x6, S3_3_C4_C4_2
        ldr     x10, [x13]
        msr     S3_3_C4_C4_2, x10
        LIVE    fpmr
        mrs     x10, S3_3_C4_C4_2
        str     x10, [x12]
        msr     S3_3_C4_C4_2, x6
        EPILOGUE

FUNC rt_a64_clobber_fpmr
        ldr     x10, [x0]
        msr     S3_3_C4_C4_2, x10
        ret

/* ---------------------------------------------------------------- sve-za: a transition */
/*
 * z0-z31, p0-p15 and FFR loaded with SVE (non-streaming, at the SVE VL), the window, then
 * SMSTART ZA as the first instruction after it, and the same registers stored with SVE. Turning
 * ZA on leaves them alone (only a change of PSTATE.SM zeroes Z, P and FFR: Arm ARM, SMSTART). In
 * a fresh thread (TIF_SME clear) SMSTART is its first SME instruction: it traps, and the
 * kernel's do_sme_acc() allocates the SME state (kzalloc, which may sleep: the task's live SVE
 * state is then saved and reloaded) before it lets the thread go on with its SVE state intact.
 */
FUNC rt_a64_window_sveza
        PROLOGUE
        SVE_LOAD x13, x11
        LIVE    sveza
        smstart za
        SVE_STORE x12, x11
        smstop  za
        EPILOGUE

/* the handler's clobber: the SVE state with other values (the handler runs with ZA off) */
FUNC rt_a64_clobber_sveza
        SVE_LOAD x0, x11
        ret

/* ---------------------------------------------------------------- sve-ssve: a transition */
/*
 * Buffer: the ZA rows (as `za`, SVL rows of SVL bytes), then z0-z31, p0-p15 and FFR at the SVE
 * VL in the SVE class's layout (SVE_STORE). ZA is loaded and turned on; z, p and FFR get stale
 * values in non-streaming mode (STALE: z<i> all lanes the input's word i, a value of this
 * window's ZA rows; every p and FFR all-true). Then streaming mode is entered, and in the window
 * flipped every 256 spin iterations (SM_FLIP), so that interrupts, preemption, migration and
 * signals land in both modes and on both sides of each change of PSTATE.SM; the window's syscall
 * is made in the mode the first loop ended in (in streaming mode, the kernel leaves it:
 * fp_user_discard). After the window, SMSTOP SM (where still on),
 * and z, p and FFR are stored: each change of PSTATE.SM zeroes them (Arm ARM, SMSTART and
 * SMSTOP), so every one must be zero; a stale value there reads as a ZA row's. Then the ZA
 * rows, which no change of PSTATE.SM touches (Arm ARM) and a syscall keeps (sme.rst, "System
 * call behaviour").
 */
/* z\n: every 64-bit lane x10 (a macro of its own: inside STALE's .irp, "\i.d" is no name) */
.macro DUP_X10 n
        dup     z\n\().d, x10
.endm
.macro ALLTRUE n
        ptrue   p\n\().b
.endm
.macro STALE base
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        ldr     x10, [\base, #\i*8]
        DUP_X10 \i
        .endr
        .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        ALLTRUE \i
        .endr
        setffr
.endm

/*
 * In a spin loop (x10 counts down): every 256 iterations, flip PSTATE.SM (SMSTOP SM when it is
 * on, SMSTART SM when it is off), so that the window spends stretches of its time in each mode
 * and the kernel's entries land on both sides of the changes. Uses x16.
 */
.macro SM_FLIP
        tst     x10, #255
        b.ne    87f
        mrs     x16, svcr
        tbnz    x16, #0, 86f
        smstart sm
        b       87f
86:     smstop  sm
87:
.endm

FUNC rt_a64_window_svessve
        PROLOGUE
        FPC_ASIDE
        smstart za
        ZA_ROWS ldr, x13
        STALE   x13
        smstart sm
        LIVE    svessve, SM_FLIP
        smstop  sm
        rdsvl   x16, #1
        mul     x16, x16, x16
        add     x3, x12, x16            /* z, p, FFR after the SVL x SVL bytes of ZA */
        SVE_STORE x3, x4
        ZA_ROWS str, x12
        smstop  za
        FPC_BACK
        EPILOGUE

/*
 * The handler's clobber (the handler starts with SM and ZA off): ZA with other values, and the
 * non-streaming z, p and FFR stale again; sigreturn must bring back ZA, PSTATE.SM and (in
 * streaming mode) the zeroed streaming registers.
 */
FUNC rt_a64_clobber_svessve
        smstart za
        ZA_ROWS ldr, x0
        STALE   x0
        ret

/* ---------------------------------------------------------------- the SME state after execve */
/* void rt_a64_sme_entry(u64 out[2]): TPIDR2_EL0 and SVCR, for the execve check's probe. */
FUNC rt_a64_sme_entry
        mrs     x1, tpidr2_el0
        str     x1, [x0]
        mrs     x1, svcr
        str     x1, [x0, #8]
        ret
