/*
 * The frame of the gpr windows of x86_64, aarch64 and riscv64 (powerpc64's has the ABI's stack
 * header first and lays out its own): byte offsets from the stack pointer of the words in which
 * the window keeps its values, so that no register but the window's own holds one.
 */
        .set G_OP,      0               /* op */
        .set G_OBS,     8               /* observed */
        .set G_SPIN,    16              /* the spin before the syscall, at least 1 */
        .set G_SPIN2,   24              /* the spin after it, at least 1 */
        .set G_TOUCH,   32              /* the page to touch, or G_DUMMY */
        .set G_DUMMY,   40              /* the byte touched when no page is */
        .set G_PATH,    48              /* where the first spin goes: no syscall, or one */
        .set G_RET,     56              /* the syscall's result, for op->ret */
#if defined(__x86_64__)
        .set G_PARK,    64              /* rax while the stores need it as their base */
        .set G_SYSNO,   72
        .set G_ARGS,    80              /* 6 words */
        .set G_AFTER,   128             /* where the syscall goes on: the fork child exits */
        .set G_FRAME,   144
#else
        .set G_SYSNO,   64
        .set G_AFTER,   72              /* where the syscall goes on: the fork child exits */
        .set G_ARGS,    80              /* 6 words */
        .set G_SAVE,    128             /* the callee-saved registers (aarch64: x18-x29 in pairs, then x30; riscv64: s0-s11, ra) */
        .set G_FRAME,   240
#endif
