/*
 * struct WindowOp (src/window/mod.rs, #[repr(C)]) and its flags, as every src/arch/<arch>/regs.S
 * sees them. The test window::tests::the_assembly_header_matches_the_struct reads this file
 * and checks each value against the Rust definitions: change both together.
 */
#define OP_SPIN         0
#define OP_SYSNO        8
#define OP_ARG0         16
#define OP_ARG1         24
#define OP_ARG2         32
#define OP_ARG3         40
#define OP_ARG4         48
#define OP_ARG5         56
#define OP_FLAGS        64
#define OP_TOUCH        72
#define OP_SPIN_AFTER   80
#define OP_RET          88

#define FLAG_CHILD_EXIT 1
#define FLAG_TOUCH      2
#define FLAG_SCV        4
#define FLAG_CHILD_EXIT_BIT 0
#define FLAG_TOUCH_BIT  1
#define FLAG_SCV_BIT    2

/* Every regs.S: a global function, and a global label inside one (the live-window bounds). */
.macro FUNC name
        .globl  \name
        .type   \name, STT_FUNC
        .p2align 4
\name:
.endm

.macro LABEL name
        .globl  \name
\name:
.endm
