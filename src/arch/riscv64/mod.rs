//! riscv64 backend: FP (f0-f31, fcsr), V (v0-v31 at the run-time VLEN, vtype, vl, vstart,
//! vcsr) and the integer registers (gpr).
//!
//! Classes are detected from `getauxval(AT_HWCAP)`, whose bits are the single-letter ISA
//! extensions (arch/riscv/include/uapi/asm/hwcap.h: COMPAT_HWCAP_ISA_F, _D, _V). The kernel
//! sets the V bit only when it handles the vector state (Linux 6.5 and later, with
//! CONFIG_RISCV_ISA_V), and `prctl(PR_RISCV_V_GET_CONTROL)` says whether this process may use
//! it (Documentation/arch/riscv/vector.rst, "prctl() Interface"); a kernel without either
//! makes the vector class unavailable, with the reason. The vector layout follows VLENB.
//!
//! The kernel's RISC-V vector ABI (Documentation/arch/riscv/vector.rst, "Vector Register
//! State Across System Calls") clobbers the V registers at every system call (the kernel
//! discards them: all ones, vtype.vill set, vl 0), so a window that makes a syscall checks
//! none of the vector class ([`preserved`]); spin and page-fault windows check every bit.
//! Across `ecall` the kernel keeps every integer register but a0 and all of the FP state.

mod frame;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{EntryLane, Routines};
use crate::class::{ClassDesc, ClassId, ClassLayout, RegKind};
use crate::window::WindowKind;

/// This backend (see [`super::Backend`]).
pub(crate) struct Native;

asm_classes! { "rt_rv": Fpr => fpr, Vector => vector, Gpr => gpr }

unsafe extern "C" {
    /// VLENB (regs.S); only where the V extension is enabled.
    fn rt_rv_vlenb() -> usize;
    /// The V state read by the thread's first V instruction, into `4 * VLENB + 4` words (regs.S).
    fn rt_rv_first_use(out: *mut u64);
    fn rt_rv_execve(regs: *const u64, path: *const libc::c_char, argv: *const *const libc::c_char, envp: *const *const libc::c_char);
}

/// The bytes of one V register the vector layout was made for (0: no V).
static VLENB: AtomicUsize = AtomicUsize::new(0);
/// Whether the vector class is available (detect): the first-use probe may run.
static V_ON: AtomicBool = AtomicBool::new(false);
/// Whether this runs under user-mode emulation (read by the signal-frame code, which may not
/// read /proc itself).
static EMULATED: AtomicBool = AtomicBool::new(false);

/// AT_HWCAP bits: one per single-letter extension, bit (letter - 'A').
const HWCAP_F: u64 = 1 << (b'F' - b'A');
const HWCAP_D: u64 = 1 << (b'D' - b'A');
const HWCAP_V: u64 = 1 << (b'V' - b'A');
/// include/uapi/linux/prctl.h (Linux 6.5).
const PR_RISCV_V_GET_CONTROL: i32 = 70;
const PR_RISCV_V_VSTATE_CTRL_CUR_MASK: i32 = 0x3;
const PR_RISCV_V_VSTATE_CTRL_ON: i32 = 2;

/// fcsr: the accrued exception flags (bits 0-4) and the rounding mode's low two bits vary
/// (frm 0-3: RNE, RTZ, RDN, RUP). frm 4 (RMM) is legal but 5-7 are not, and a signal handler
/// runs with the interrupted fcsr: an FP instruction of the handler would trap on them.
const FCSR: RegKind = RegKind::control(0x7f);
/// vtype: vma (7), vta (6), vsew's low bit (e8, e16) and vlmul's low two bits (m1-m8) vary;
/// vill and the reserved encodings stay clear, so every value is a legal configuration with
/// VLMAX = LMUL * VLEN / SEW >= VLEN / 16 >= 8 (the V extension has VLEN >= 128).
const VTYPE: RegKind = RegKind::control(0xcb);
/// vl: at most 7, below VLMAX for every vtype above, so `vsetvl` (in the window and in the
/// kernel's restore) sets exactly this value.
const VL: RegKind = RegKind::control(0x7);
/// vcsr: vxrm (bits 1-2) and vxsat (bit 0).
const VCSR: RegKind = RegKind::control(0x7);
/// The integer registers the gpr class holds, in the layout's order: ra, then x5-x30. sp, gp
/// and tp belong to the ABI (the signal handler needs gp and tp), t6 is the window's own.
const GPRS: [&str; 27] = [
    "ra", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3",
    "t4", "t5",
];

/// x0-x31 by their psABI names.
const ABI_NAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8",
    "s9", "s10", "s11", "t3", "t4", "t5", "t6",
];

/// The registers `rt_rv_execve` loads, by number (`ABI_NAMES` with the others blank): all but
/// x0, sp (x2), a0-a2 (x10-x12, the call's arguments) and a7 (x17, its number, which
/// `syscall_get_nr()` reads).
const EXECVE_REGS: [&str; 32] = {
    let mut r = ABI_NAMES;
    let skip = [0, 2, 10, 11, 12, 17];
    let mut i = 0;
    while i < skip.len() {
        r[skip[i]] = "";
        i += 1;
    }
    r
};

fn hwcap() -> u64 {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_HWCAP) as u64 }
}

/// vstart holds an element index: lg2(VLEN) bits (the V specification, "Vector Start Index
/// CSR vstart").
fn vstart(vlenb: usize) -> RegKind {
    RegKind::control((vlenb * 8 - 1) as u64)
}

/// Whether the V extension can be used here: VLENB, or why not.
fn vector_state(hw: u64, emulated: bool) -> Result<usize, String> {
    if hw & HWCAP_V == 0 {
        return Err("AT_HWCAP has no V: the CPU has no vector extension, or the kernel does not handle its state \
                    (Linux before 6.5 saves no vector registers on context switch or in signal frames; \
                    or CONFIG_RISCV_ISA_V is off)"
            .into());
    }
    // SAFETY: PR_RISCV_V_GET_CONTROL only reads this thread's setting.
    let ctl = unsafe { libc::prctl(PR_RISCV_V_GET_CONTROL, 0, 0, 0, 0) };
    if ctl < 0 && !emulated {
        let e = std::io::Error::last_os_error();
        return Err(format!("AT_HWCAP has V but prctl(PR_RISCV_V_GET_CONTROL) fails ({e})"));
    }
    // qemu-user hands prctl options it does not know to the host kernel, which has no RISC-V
    // ones: the emulated CPU's V is on as AT_HWCAP says.
    if ctl >= 0 && ctl & PR_RISCV_V_VSTATE_CTRL_CUR_MASK != PR_RISCV_V_VSTATE_CTRL_ON {
        return Err(format!(
            "the kernel has V off for this process (prctl(PR_RISCV_V_GET_CONTROL) = {ctl:#x}: \
             see /proc/sys/abi/riscv_v_default_allow and PR_RISCV_V_SET_CONTROL)"
        ));
    }
    if emulated {
        // Measured: QEMU 7.2's user-mode signal frames (linux-user/riscv/signal.c) hold the
        // integer and FP registers only, so a handler's V values survive sigreturn and no V
        // fault can be injected: every check of V would be QEMU's, not the kernel's.
        return Err("user-mode emulation: QEMU's riscv64 signal frames carry no vector state (the V registers a signal \
                    handler leaves survive sigreturn), so V is checked only under a real kernel"
            .into());
    }
    // SAFETY: V is enabled for this process (AT_HWCAP and the prctl above).
    Ok(unsafe { rt_rv_vlenb() })
}

fn layout(class: ClassId, vlenb: usize) -> ClassLayout {
    match class {
        ClassId::Fpr => {
            let mut l = ClassLayout::data_regs(class, "f", 32, 8);
            l.push("fcsr", 8, FCSR);
            l
        }
        ClassId::Vector => {
            let mut l = ClassLayout::data_regs(class, "v", 32, vlenb);
            l.push("vtype", 8, VTYPE);
            l.push("vl", 8, VL);
            l.push("vstart", 8, vstart(vlenb));
            l.push("vcsr", 8, VCSR);
            l
        }
        ClassId::Gpr => {
            let mut l = ClassLayout { id: class, words: 0, regs: vec![] };
            GPRS.iter().for_each(|r| l.push(r, 8, RegKind::Data));
            l
        }
        _ => unreachable!("not a riscv64 class"),
    }
}

fn words(class: ClassId) -> usize {
    match class {
        ClassId::Fpr => 33,
        ClassId::Vector => 4 * VLENB.load(Ordering::Acquire) + 4,
        ClassId::Gpr => 27,
        _ => usize::MAX,
    }
}

/// The encoding of `ecall`, as it lies in memory: `arch::at_syscall_exit` looks for it just
/// before an interrupted PC.
const SYSCALL_INSNS: &[&[u8]] = &[&[0x73, 0x00, 0x00, 0x00]];

/// The riscv64 backend.
/// The bytes regs.S reserves for `rt_entry_state` (a test reads regs.S to check).
pub(super) const ENTRY_STATE_BYTES: usize = 520;

// SAFETY: `routines` names only this folder's regs.S routines, written to the window ABI of
// window_op.h, with the buffer sizes of `detect`'s layouts (checked by the layout tests below).
unsafe impl super::Backend for Native {
    /// The FP routine restores fs0-fs11 and fcsr, the gpr routine s0-s11 and ra; the V routine
    /// leaves vstart zero (no V state is callee-saved). The clobbers leave what they load.
    fn routines(&self, class: ClassId) -> Option<Routines> {
        asm_routines(class, words(class))
    }

    fn detect(&self) -> Vec<ClassDesc> {
        let hw = hwcap();
        let emulated = super::linux::user_mode_emulation();
        EMULATED.store(emulated, Ordering::Release);
        let fpr = if hw & (HWCAP_F | HWCAP_D) == HWCAP_F | HWCAP_D { Ok(()) } else { Err("the CPU has no F and D extensions (AT_HWCAP)".to_string()) };
        let v = vector_state(hw, emulated);
        let vlenb = *v.as_ref().unwrap_or(&16);
        VLENB.store(vlenb, Ordering::Release);
        V_ON.store(v.is_ok(), Ordering::Release);
        let descs = vec![
            ClassDesc { layout: layout(ClassId::Fpr, 0), available: fpr },
            ClassDesc { layout: layout(ClassId::Vector, vlenb), available: v.map(|_| ()) },
            ClassDesc { layout: layout(ClassId::Gpr, 0), available: Ok(()) },
        ];
        super::ENABLED.record(&descs);
        descs
    }

    /// Which bits a window of this kind must keep, when not all. Across `ecall` the kernel
    /// keeps every integer register but a0, the result (arch/riscv/kernel/traps.c,
    /// do_trap_ecall_u), so the gpr class loses a0, a7 (the syscall number the window loads)
    /// and, for a syscall with arguments, a1-a5. The vector class keeps nothing across a
    /// syscall (Documentation/arch/riscv/vector.rst: "vector registers are clobbered by system
    /// calls"; the kernel discards them on entry, vector CSRs included). FP keeps everything.
    fn preserved(&self, class: ClassId, kind: WindowKind) -> Option<Vec<u64>> {
        if !kind.has_syscall() {
            return None;
        }
        match class {
            ClassId::Gpr => {
                let mut keep = vec![u64::MAX; words(class)];
                let mut lose = vec!["a0", "a7"];
                if kind.syscall_args() {
                    lose.extend(["a1", "a2", "a3", "a4", "a5"]);
                }
                for r in lose {
                    keep[GPRS.iter().position(|g| *g == r).expect("a gpr")] = 0;
                }
                Some(keep)
            }
            ClassId::Vector => Some(vec![0; words(class)]),
            _ => None,
        }
    }

    /// V after a syscall: the kernel discards it on entry (riscv_v_vstate_discard in
    /// do_trap_ecall_u: every register all ones, vtype vill, vl 0), and the ABI says only
    /// "clobbered" (Documentation/arch/riscv/vector.rst). Nothing of it is kept, but nothing
    /// written by anyone may come back: that would be a stale state restored.
    fn scrubbed(&self, class: ClassId, kind: WindowKind) -> bool {
        class == ClassId::Vector && kind.has_syscall()
    }

    /// A fresh thread starts with V off: copy_thread turns status.VS off
    /// (arch/riscv/kernel/process.c, "Turn off status.VS"), and its first V instruction traps
    /// to riscv_v_first_use_handler (arch/riscv/kernel/vector.c), which allocates a zeroed
    /// state (kmem_cache_zalloc, and the CSR fields memset to 0) and restores it. Before Linux
    /// 6.5's fix the handler turned V on without a restore: the thread saw whatever the
    /// hart's V registers last held.
    fn first_use(&self, class: ClassId) -> Option<Vec<u64>> {
        if class != ClassId::Vector || !V_ON.load(Ordering::Acquire) {
            return None;
        }
        let mut out = vec![0u64; words(ClassId::Vector)];
        // SAFETY: V is enabled for this process (detect), and `out` holds the vector layout's
        // 4 * VLENB + 4 words, which the routine writes and nothing more.
        unsafe { rt_rv_first_use(out.as_mut_ptr()) };
        Some(out)
    }

    /// The kernel refuses a planted V state to a thread whose V is off: rt_sigreturn rejects a
    /// V context then (restore_sigcontext, RISCV_V_MAGIC: `!riscv_v_vstate_query(regs)` is
    /// -EINVAL), and so does ptrace (riscv_vr_set: -ENODATA). So the control loads the values
    /// itself, then runs the first-use reader over them.
    fn first_use_control(&self, class: ClassId, values: &[u64]) -> Option<Vec<u64>> {
        if class != ClassId::Vector || !V_ON.load(Ordering::Acquire) || values.len() < words(class) {
            return None;
        }
        let mut out = vec![0u64; words(class)];
        // SAFETY: V is enabled and both buffers hold the layout's words. The clobber routine
        // changes only V registers and CSRs, which no code of this crate uses (it is built
        // without V) and the psABI does not preserve across calls; the values' CSR words are
        // legal (the layout's Control kinds, or zero), vstart last.
        unsafe {
            asm::vector::clobber(values.as_ptr());
            rt_rv_first_use(out.as_mut_ptr());
        }
        Some(out)
    }

    fn first_use_rule(&self, class: ClassId) -> Option<&'static str> {
        (class == ClassId::Vector && V_ON.load(Ordering::Acquire)).then_some("riscv_v_first_use_handler restores a zeroed state (arch/riscv/kernel/vector.c)")
    }

    fn prstatus_pc(&self) -> usize {
        0
    }
    fn prstatus_offset(&self, name: &str) -> Option<usize> {
        // struct user_regs_struct (arch/riscv/include/uapi/asm/ptrace.h): pc, then x1-x31.
        ABI_NAMES.iter().position(|r| *r == name).filter(|&n| n > 0).map(|n| 8 * n)
    }
    fn execve_registers(&self) -> &'static [&'static str] {
        &EXECVE_REGS
    }
    /// s1-s11 (callee-saved; glibc's `_start` reads a0 and sp).
    fn exec_plant_gprs(&self) -> &'static [&'static str] {
        &["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"]
    }
    unsafe fn execve_with_registers(&self, regs: &[u64], path: *const libc::c_char, argv: *const *const libc::c_char, envp: *const *const libc::c_char) {
        assert_eq!(regs.len(), 32, "one word per register");
        // SAFETY: regs holds x0-x31; the caller vouches for the rest (see the trait).
        unsafe { rt_rv_execve(regs.as_ptr(), path, argv, envp) }
    }
    /// Besides `NT_PRSTATUS` and `NT_PRFPREG`: `NT_RISCV_VECTOR` for the vector class,
    /// `struct __riscv_v_regset_state` (arch/riscv/include/uapi/asm/ptrace.h: vstart, vl,
    /// vtype, vcsr, vlenb as 8-byte words, then v0-v31 of vlenb bytes each; riscv_vr_get).
    fn regsets(&self, layout: &ClassLayout) -> Vec<super::RegsetMap> {
        const NT_RISCV_VECTOR: u32 = 0x901;
        let mut out = super::default_regsets(self, layout);
        if layout.id == ClassId::Vector {
            let words: Vec<(usize, usize, usize)> = layout
                .data_lanes()
                .filter_map(|(w, r, l)| {
                    let spec = &layout.regs[r];
                    let n: usize = spec.name.strip_prefix('v')?.parse().ok()?;
                    Some((w, 40 + n * spec.bytes + 8 * l, 8))
                })
                .collect();
            if !words.is_empty() {
                out.push(super::RegsetMap::new(NT_RISCV_VECTOR, "NT_RISCV_VECTOR", words).partial());
            }
        }
        out
    }
    // NT_PRFPREG is `struct __riscv_d_ext_state` (arch/riscv/include/uapi/asm/ptrace.h): f[32]
    // as 64-bit words from byte 0, then fcsr.
    fn fp_regset(&self) -> Option<super::FpRegset> {
        Some(super::FpRegset { class: ClassId::Fpr, prefix: "f", regs: 32, lanes: 1, base: 0, stride: 8 })
    }
    /// The entry stub's record. After execve the FP state is zero (flush_thread clears
    /// thread.fstate, start_thread loads it: f0-f31 and fcsr 0). Nothing is promised of the
    /// integer registers: riscv defines no ELF_PLAT_INIT and its start_thread sets only sp (and
    /// the syscall's return leaves a0 0), so a pattern value of the process that called execve
    /// found in one is a leak, any other value only counted.
    fn entry_state(&self) -> Option<Vec<EntryLane>> {
        let (_, u64at) = super::entry_record(0)?;
        let mut out: Vec<EntryLane> = (0..32).map(|i| EntryLane::new(ClassId::Fpr, format!("f{i}"), 0, u64at(256 + 8 * i), Some(0))).collect();
        out.push(EntryLane::new(ClassId::Fpr, "fcsr", 0, u64at(512), Some(0)));
        for (i, name) in ABI_NAMES.iter().enumerate().skip(1) {
            out.push(EntryLane::new(ClassId::Gpr, *name, 0, u64at(8 * i), None));
        }
        Some(out)
    }

    fn syscall_insns(&self) -> &'static [&'static [u8]] {
        SYSCALL_INSNS
    }

    /// The kernel's /proc/cpuinfo on RISC-V lists `hart` and `isa` lines
    /// (arch/riscv/kernel/cpu.c); qemu-user shows the host's.
    fn cpuinfo_is_native(&self, cpuinfo: &str) -> bool {
        cpuinfo.lines().any(|l| l.starts_with("isa\t") && l.contains("rv64"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::window::{HiVector, WindowOp};

    #[test]
    fn layout_sizes_match_the_assembly() {
        assert_eq!(layout(ClassId::Fpr, 0).words, words(ClassId::Fpr));
        assert_eq!(layout(ClassId::Fpr, 0).regs[32].offset, 256);
        assert_eq!(layout(ClassId::Gpr, 0).words, words(ClassId::Gpr));
        // ra first, then x5 (t0) to x30 (t5) at (x - 4) * 8: GPR_ALL in regs.S.
        assert_eq!(layout(ClassId::Gpr, 0).regs[6].name, "a0");
        assert_eq!(layout(ClassId::Gpr, 0).regs[6].offset, (10 - 4) * 8);
        assert_eq!(layout(ClassId::Gpr, 0).regs[26].offset, (30 - 4) * 8);
        let saved = VLENB.load(Ordering::Acquire);
        for vlenb in [16, 32, 64, 256] {
            VLENB.store(vlenb, Ordering::Release);
            let l = layout(ClassId::Vector, vlenb);
            assert_eq!(l.words, words(ClassId::Vector), "vlenb {vlenb}");
            assert_eq!(l.regs[32].offset, 32 * vlenb, "vtype follows v31");
            assert_eq!(l.regs[34].name, "vstart");
        }
        VLENB.store(saved, Ordering::Release);
    }

    /// The vector window's assembly round-trips every register and CSR through a spin window,
    /// and loses them all (as the ABI allows) across a syscall. Run where V is enabled (the
    /// runner gives qemu-user a V CPU), whether or not `detect` offers the class.
    #[test]
    fn the_vector_window_round_trips_its_registers() {
        if hwcap() & HWCAP_V == 0 {
            // Not a silent pass: the riscv64 test runner always enables V.
            panic!("no V here: run the riscv64 unit tests with a V CPU (qemu-riscv64-static -cpu rv64,v=true)");
        }
        // SAFETY: V is in AT_HWCAP.
        let vlenb = unsafe { rt_rv_vlenb() };
        let l = layout(ClassId::Vector, vlenb);
        let p = crate::pattern::Pattern::new(7);
        let t = crate::pattern::Template::new(&p, &l, 1);
        let mut expected = vec![0; l.words];
        t.fill(&p, 3, &mut expected);
        let mut observed = vec![0; l.words];
        let mut op = WindowOp::spin(1000);
        // SAFETY: V is enabled, both buffers hold the layout's words, the op is a spin.
        unsafe { asm::vector::window(expected.as_ptr(), observed.as_mut_ptr(), &mut op, std::ptr::null::<HiVector>()) };
        assert_eq!(expected, observed);
        assert_ne!(expected[32 * vlenb / 8 + 2], 0, "vstart holds a pattern");
    }
}
