/*
 * x86_64 register windows for regtorture.
 *
 * Each class has two routines:
 *
 *   void rt_x86_window_<class>(const void *expected, void *observed, struct window_op *op,
 *                              const void *hi)
 *       loads every register of the class from `expected` (SSE, AVX, AVX-512 and opmask: ORed
 *       with the 64-byte-aligned `hi` vector when `hi` is not NULL, so that the iteration part of
 *       the pattern costs no pass over memory), runs the window described by `op`
 *       (spin, a syscall issued right here, a page touch, fork/vfork whose child exits at once),
 *       then stores every register of the class to `observed`.  Between the load and the store
 *       nothing but general-purpose registers and `op` is touched, so any difference between the
 *       two buffers was made by something outside this thread's instruction stream: the kernel
 *       (or the CPU).  The labels rt_x86_live_begin_<class>/rt_x86_live_end_<class> bound the
 *       instructions during which the registers hold the pattern; the fault injector uses them.
 *
 *   void rt_x86_clobber_<class>(const void *values)
 *       loads the class from `values` and returns with the registers still holding them; the
 *       signal handler uses it to make sure sigreturn must really restore the interrupted state.
 *
 * ABI notes (System V x86_64): every vector, opmask, x87 data and tile register is
 * caller-saved, so the Rust side declares these routines `extern "C"` and loses nothing it
 * relies on.  The MXCSR control bits and the x87 control word are callee-saved: the window
 * routines put the caller's values back before returning.  The x87 stack is left empty.
 */
        .intel_syntax noprefix
        .text

/* struct window_op, see src/window.rs (WindowOp, #[repr(C)]) */
#include "../window_op.h"

.macro PROLOGUE
        push    rbx
        push    r12
        push    r13
        sub     rsp, 16                 /* 16 bytes for the caller's MXCSR / FCW */
        mov     rbx, rdx                /* op */
        mov     r12, rsi                /* observed */
        mov     r13, rdi                /* expected */
        /* rcx: the `hi` vector or NULL, used before the window only */
.endm

.macro EPILOGUE
        add     rsp, 16
        pop     r13
        pop     r12
        pop     rbx
        ret
.endm

/* The window: only rax, rcx, rdx, rsi, rdi, r8-r11 and memory at `op` / op->touch are used. */
.macro WINDOW
        mov     rcx, [rbx + OP_SPIN]
        test    rcx, rcx
        jz      2f
1:      dec     rcx
        jnz     1b
2:      test    qword ptr [rbx + OP_FLAGS], FLAG_TOUCH
        jz      3f
        mov     rax, [rbx + OP_TOUCH]
        mov     byte ptr [rax], 1       /* first touch of a fresh page: a page fault */
3:      mov     rax, [rbx + OP_SYSNO]
        test    rax, rax
        js      5f
        mov     rdi, [rbx + OP_ARG0]
        mov     rsi, [rbx + OP_ARG1]
        mov     rdx, [rbx + OP_ARG2]
        mov     r10, [rbx + OP_ARG3]
        mov     r8,  [rbx + OP_ARG4]
        mov     r9,  [rbx + OP_ARG5]
        syscall
        test    qword ptr [rbx + OP_FLAGS], FLAG_CHILD_EXIT
        jz      4f
        test    rax, rax
        jnz     4f
        /* the child of fork/vfork: leave at once, touching no memory (vfork shares it) */
        mov     eax, 60                 /* SYS_exit */
        xor     edi, edi
        syscall
        ud2
4:      mov     [rbx + OP_RET], rax
5:      mov     rcx, [rbx + OP_SPIN_AFTER]
        test    rcx, rcx
        jz      7f
6:      dec     rcx
        jnz     6b
7:
.endm

/* The window of \class, between the labels that bound its live range */
.macro LIVE class
LABEL rt_x86_live_begin_\class
        WINDOW
LABEL rt_x86_live_end_\class
.endm

/* ---------------------------------------------------------------- x87: st0-st7 and FCW */
/* layout: st(i) as 80-bit at i*16, FCW at 128 */
FUNC rt_x86_window_x87
        PROLOGUE
        fnstcw  [rsp]
        fninit
        fldcw   [r13 + 128]
        .irp i,7,6,5,4,3,2,1,0
        fld     tbyte ptr [r13 + \i*16]
        .endr
        LIVE    x87
        .irp i,0,1,2,3,4,5,6,7
        fstp    tbyte ptr [r12 + \i*16]
        .endr
        fnstcw  [r12 + 128]
        fninit
        fldcw   [rsp]
        EPILOGUE

FUNC rt_x86_clobber_x87
        fninit
        fldcw   [rdi + 128]
        .irp i,7,6,5,4,3,2,1,0
        fld     tbyte ptr [rdi + \i*16]
        .endr
        /* leave the stack empty as the ABI wants; the data registers keep the values */
        .irp i,0,1,2,3,4,5,6,7
        ffree   st(\i)
        .endr
        ret

/* ---------------------------------------------------------------- MXCSR */
FUNC rt_x86_window_mxcsr
        PROLOGUE
        stmxcsr [rsp]
        ldmxcsr [r13]
        LIVE    mxcsr
        stmxcsr [r12]
        ldmxcsr [rsp]
        EPILOGUE

FUNC rt_x86_clobber_mxcsr
        ldmxcsr [rdi]
        ret

/* ---------------------------------------------------------------- PKRU: protection keys */
/* layout: PKRU as the low 32 bits of one word; the caller's PKRU is put back after the window.
   RDPKRU needs ecx = 0 and returns edx = 0; WRPKRU needs ecx = edx = 0. */
FUNC rt_x86_window_pkru
        PROLOGUE
        xor     ecx, ecx
        rdpkru
        mov     [rsp], eax
        mov     eax, [r13]
        xor     ecx, ecx
        xor     edx, edx
        wrpkru
        LIVE    pkru
        xor     ecx, ecx
        rdpkru
        mov     [r12], rax              /* edx = 0: the upper half of the word is zero */
        mov     eax, [rsp]
        xor     ecx, ecx
        xor     edx, edx
        wrpkru
        EPILOGUE

FUNC rt_x86_clobber_pkru
        mov     eax, [rdi]
        xor     ecx, ecx
        xor     edx, edx
        wrpkru
        ret

/* ---------------------------------------------------------------- vector classes */
/* \insn each \reg<i> of \regs from or to \base + i*\size */
.macro VLOAD insn, reg, base, size, regs:vararg
        .irp i,\regs
        \insn   \reg\i, [\base + \i*\size]
        .endr
.endm
.macro VSTORE insn, reg, base, size, regs:vararg
        .irp i,\regs
        \insn   [\base + \i*\size], \reg\i
        .endr
.endm

/* ORs a register with the `hi` vector at [rcx] (the SSE form, then the VEX and EVEX ones) */
.macro OR_HI_SSE r
        por     \r, [rcx]
.endm
.macro OR_HI_AVX r
        vpor    \r, \r, [rcx]
.endm
.macro OR_HI_AVX512 r
        vporq   \r, \r, [rcx]
.endm

/*
 * A vector class: its window loads \reg<i> of \regs from expected at i*\size with \mov, ORs
 * each with `hi` (\or_hi) when `hi` is not NULL, runs the window, stores them to observed and,
 * but for SSE, leaves the upper state clean with vzeroupper; its clobber loads them from `values`.
 */
.macro VECTOR_CLASS class, mov, or_hi, reg, size, regs:vararg
FUNC rt_x86_window_\class
        PROLOGUE
        VLOAD   \mov, \reg, r13, \size, \regs
        test    rcx, rcx
        jz      1f
        .irp i,\regs
        \or_hi  \reg\i
        .endr
1:
        LIVE    \class
        VSTORE  \mov, \reg, r12, \size, \regs
        .ifnc \reg,xmm
        vzeroupper
        .endif
        EPILOGUE

FUNC rt_x86_clobber_\class
        VLOAD   \mov, \reg, rdi, \size, \regs
        ret
.endm

#define REGS16 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
#define REGS32 REGS16,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31

/* SSE: xmm0-xmm15; AVX: ymm0-ymm15 */
        VECTOR_CLASS sse, movdqu, OR_HI_SSE, xmm, 16, REGS16
        VECTOR_CLASS avx, vmovdqu, OR_HI_AVX, ymm, 32, REGS16

/* ---------------------------------------------------------------- the avx-upper transition */
/*
 * layout: ymm(i) at i*32: the low 128 bits are the pattern, the upper 128 bits must be zero.
 * Each ymm is first loaded with its low half in both halves (vbroadcasti128: a tagged value in
 * the upper half), then `vzeroupper` zeroes the upper halves and puts the YMM_Hi128 component
 * into its initial configuration (XINUSE[2] = 0). The window runs; the first AVX instruction
 * after it stores ymm0. A kernel that saves or restores the init state wrongly, or a CPU that
 * loses the zeroing (Zenbleed, CVE-2023-20593: a mispredicted vzeroupper rolled back left the
 * upper halves pointing at freed register-file entries), shows a tagged or foreign value there.
 */
FUNC rt_x86_window_avxupper
        PROLOGUE
        VLOAD   vbroadcasti128, ymm, r13, 32, REGS16
        vzeroupper
        LIVE    avxupper
        VSTORE  vmovdqu, ymm, r12, 32, REGS16
        vzeroupper
        EPILOGUE

FUNC rt_x86_clobber_avxupper
        VLOAD   vmovdqu, ymm, rdi, 32, REGS16
        ret

/* ---------------------------------------------------------------- AVX-512: zmm0-zmm31 */
        VECTOR_CLASS avx512, vmovdqu64, OR_HI_AVX512, zmm, 64, REGS32

/* ---------------------------------------------------------------- AVX-512 opmask: k0-k7 */
FUNC rt_x86_window_opmask
        PROLOGUE
        test    rcx, rcx
        jz      2f
        .irp i,0,1,2,3,4,5,6,7
        mov     rax, [r13 + \i*8]
        or      rax, [rcx]
        kmovq   k\i, rax
        .endr
        jmp     1f
2:
        .irp i,0,1,2,3,4,5,6,7
        kmovq   k\i, [r13 + \i*8]
        .endr
1:
        LIVE    opmask
        .irp i,0,1,2,3,4,5,6,7
        kmovq   [r12 + \i*8], k\i
        .endr
        EPILOGUE

FUNC rt_x86_clobber_opmask
        .irp i,0,1,2,3,4,5,6,7
        kmovq   k\i, [rdi + \i*8]
        .endr
        ret

/* ---------------------------------------------------------------- AMX: tmm0-tmm7 */
/* layout: tile i (16 rows x 64 bytes) at i*1024, the 64-byte tile configuration at 8192 */
FUNC rt_x86_window_amx
        PROLOGUE
        ldtilecfg [r13 + 8192]
        mov     eax, 64
        .irp i,0,1,2,3,4,5,6,7
        tileloadd tmm\i, [r13 + rax*1 + \i*1024]
        .endr
        LIVE    amx
        mov     eax, 64
        .irp i,0,1,2,3,4,5,6,7
        tilestored [r12 + rax*1 + \i*1024], tmm\i
        .endr
        sttilecfg [r12 + 8192]
        tilerelease
        EPILOGUE

FUNC rt_x86_clobber_amx
        ldtilecfg [rdi + 8192]
        mov     eax, 64
        .irp i,0,1,2,3,4,5,6,7
        tileloadd tmm\i, [rdi + rax*1 + \i*1024]
        .endr
        ret


/* ---------------------------------------------------------------- GPR: integer registers and flags */
/*
 * layout: rax rbx rdx rsi rdi rbp r8 r9 r10 r11 r12 r13 r14 r15 at i*8 (i = 0..13), RFLAGS at 112.
 * rsp is the stack and rcx the window's loop counter (`loop` leaves the flags alone; `syscall`
 * clobbers rcx anyway): neither holds a pattern. Between the loads and the stores nothing
 * touches the flags or another register: every decision of the window (touch a page or not,
 * which syscall path, the fork child's exit) is taken in the prologue and followed with
 * memory-indirect jumps through the frame, and the window's values live in the frame.
 */
#include "../gpr_frame.h"

/* GPR_<reg>: the byte offset of each register in the class buffer */
        .set off, 0
        .irp r,rax,rbx,rdx,rsi,rdi,rbp,r8,r9,r10,r11,r12,r13,r14,r15
        .set GPR_\r, off
        .set off, off + 8
        .endr

FUNC rt_x86_window_gpr
        push    rbp
        push    rbx
        push    r12
        push    r13
        push    r14
        push    r15
        sub     rsp, G_FRAME
        mov     [rsp + G_OP], rdx
        mov     [rsp + G_OBS], rsi
        /* spins of at least 1: `loop` from 0 would run 2^64 times */
        mov     rax, [rdx + OP_SPIN]
        test    rax, rax
        jnz     1f
        inc     rax
1:      mov     [rsp + G_SPIN], rax
        mov     rax, [rdx + OP_SPIN_AFTER]
        test    rax, rax
        jnz     1f
        inc     rax
1:      mov     [rsp + G_SPIN2], rax
        /* the page to touch, or a byte of the frame */
        lea     rax, [rsp + G_DUMMY]
        test    qword ptr [rdx + OP_FLAGS], FLAG_TOUCH
        jz      1f
        mov     rax, [rdx + OP_TOUCH]
1:      mov     [rsp + G_TOUCH], rax
        /* the syscall and its arguments, copied into the frame */
        mov     rax, [rdx + OP_SYSNO]
        mov     [rsp + G_SYSNO], rax
        .irp i,0,1,2,3,4,5
        mov     rax, [rdx + OP_ARG0 + \i*8]
        mov     [rsp + G_ARGS + \i*8], rax
        .endr
        /* the path after the first spin: no syscall, one without arguments (every register
           but rax keeps its pattern), or one with its arguments loaded */
        lea     rax, [rip + .Lgpr_nosys]
        cmp     qword ptr [rdx + OP_SYSNO], 0
        jl      2f
        lea     rax, [rip + .Lgpr_sys0]
        xor     ecx, ecx
        .irp i,0,1,2,3,4,5
        or      rcx, [rdx + OP_ARG0 + \i*8]
        .endr
        jz      2f
        lea     rax, [rip + .Lgpr_sys6]
2:      mov     [rsp + G_PATH], rax
        lea     rax, [rip + .Lgpr_nosys]
        test    qword ptr [rdx + OP_FLAGS], FLAG_CHILD_EXIT
        jz      1f
        lea     rax, [rip + .Lgpr_forked]
1:      mov     [rsp + G_AFTER], rax
        mov     qword ptr [rsp + G_RET], 0
        /* load: the flags first, then every register, rdi (the base) last */
        push    qword ptr [rdi + 112]
        popfq
        .irp r,rax,rbx,rdx,rsi,rbp,r8,r9,r10,r11,r12,r13,r14,r15,rdi
        mov     \r, [rdi + GPR_\r]
        .endr
LABEL rt_x86_live_begin_gpr
        mov     rcx, [rsp + G_SPIN]
1:      loop    1b
        /* rcx (the loop's, in no class) holds the address: every class register keeps the
           pattern at every instruction of the live range that no syscall follows, which the
           ptrace trigger's views rely on */
        mov     rcx, [rsp + G_TOUCH]
        mov     byte ptr [rcx], 1       /* first touch of a fresh page (or the frame's dummy) */
        jmp     qword ptr [rsp + G_PATH]
.Lgpr_sys0:
        mov     rax, [rsp + G_SYSNO]
        syscall
        mov     [rsp + G_RET], rax
        jmp     qword ptr [rsp + G_AFTER]
.Lgpr_sys6:
        mov     rax, [rsp + G_SYSNO]
        mov     rdi, [rsp + G_ARGS + 0]
        mov     rsi, [rsp + G_ARGS + 8]
        mov     rdx, [rsp + G_ARGS + 16]
        mov     r10, [rsp + G_ARGS + 24]
        mov     r8,  [rsp + G_ARGS + 32]
        mov     r9,  [rsp + G_ARGS + 40]
        syscall
        mov     [rsp + G_RET], rax
        jmp     qword ptr [rsp + G_AFTER]
.Lgpr_forked:
        mov     rcx, rax
        jrcxz   .Lgpr_child
        jmp     .Lgpr_nosys
.Lgpr_child:
        /* the child of fork/vfork: leave at once, writing no memory (vfork shares it) */
        mov     eax, 60                 /* SYS_exit */
        xor     edi, edi
        syscall
        ud2
.Lgpr_nosys:
        mov     rcx, [rsp + G_SPIN2]
1:      loop    1b
LABEL rt_x86_live_end_gpr
        pushfq
        mov     [rsp + 8 + G_PARK], rax
        mov     rax, [rsp + 8 + G_OBS]
        pop     qword ptr [rax + 112]
        .irp r,rbx,rdx,rsi,rdi,rbp,r8,r9,r10,r11,r12,r13,r14,r15
        mov     [rax + GPR_\r], \r
        .endr
        mov     rcx, [rsp + G_PARK]
        mov     [rax + GPR_rax], rcx
        mov     rdx, [rsp + G_OP]
        mov     rcx, [rsp + G_RET]
        mov     [rdx + OP_RET], rcx
        cld
        add     rsp, G_FRAME
        pop     r15
        pop     r14
        pop     r13
        pop     r12
        pop     rbx
        pop     rbp
        ret

/* the signal handler's clobber: the caller-saved registers and the flags (the others belong to
   the handler's caller; sigreturn must restore them all anyway) */
FUNC rt_x86_clobber_gpr
        push    qword ptr [rdi + 112]
        popfq
        cld
        .irp r,rax,rdx,rsi,r8,r9,r10,r11,rdi
        mov     \r, [rdi + GPR_\r]
        .endr
        ret

        .section .note.GNU-stack,"",@progbits

/* ---------------------------------------------------------------- the process entry point */
/*
 * rt_x86_entry is the ELF entry point (build.rs: -e rt_x86_entry): the first user instruction
 * after execve for a static binary (after ld.so's for a dynamic one). It records the registers
 * as the kernel left them, before glibc's _start or anything else runs, into rt_entry_state:
 * the XSAVE image (every component of XCR0; FXSAVE without OSXSAVE) at 0, then at E_HDR a word
 * saying which (1 XSAVE, 2 FXSAVE) and rax, rbx, rcx, rdx, rsi, rdi, rbp, r8-r15. It changes
 * nothing that _start reads (rsp, rdx: the psABI's atexit pointer) and jumps there.
 */
        .set E_XSAVE_BYTES, 16384
        .set E_HDR, E_XSAVE_BYTES
        .bss
        .balign 64
        .globl  rt_entry_state
rt_entry_state:
        .zero   E_XSAVE_BYTES + 8 + 15*8
        .text
FUNC rt_x86_entry
        push    rax
        lea     rax, [rip + rt_entry_state]
        mov     [rax + E_HDR + 16], rbx
        mov     [rax + E_HDR + 24], rcx
        mov     [rax + E_HDR + 32], rdx
        mov     [rax + E_HDR + 40], rsi
        mov     [rax + E_HDR + 48], rdi
        mov     [rax + E_HDR + 56], rbp
        .irp i,8,9,10,11,12,13,14,15
        mov     [rax + E_HDR + 64 + (\i-8)*8], r\i
        .endr
        mov     rbx, [rsp]
        mov     [rax + E_HDR + 8], rbx
        mov     r8, rax
        mov     eax, 1
        cpuid
        bt      ecx, 27                 /* OSXSAVE */
        jnc     1f
        mov     eax, -1
        mov     edx, -1
        xsave   [r8]
        mov     qword ptr [r8 + E_HDR], 1
        jmp     2f
1:      fxsave  [r8]
        mov     qword ptr [r8 + E_HDR], 2
2:      mov     rbx, [r8 + E_HDR + 16]
        mov     rcx, [r8 + E_HDR + 24]
        mov     rdx, [r8 + E_HDR + 32]
        mov     r8, [r8 + E_HDR + 64]
        pop     rax
        jmp     _start
