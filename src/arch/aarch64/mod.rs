//! aarch64 backend: NEON/FP (v0-v31, FPSR, FPCR), SVE (z0-z31, p0-p15, FFR) and the integer
//! registers with NZCV (gpr).
//!
//! Classes are detected from `getauxval(AT_HWCAP)` (HWCAP_FP, HWCAP_ASIMD, HWCAP_SVE); the SVE
//! layout follows the vector length of `prctl(PR_SVE_GET_VL)`. The Linux syscall ABI keeps only
//! the low 128 bits of each z register across a syscall (the rest of z, every p and FFR become
//! zero, Documentation/arch/arm64/sve.rst), so windows that make a syscall check only those bits
//! of the SVE class ([`preserved`]); spin and page-fault windows check everything. The gpr class
//! is always available; across a syscall it loses the registers the window itself loads (x0,
//! x8, the arguments).

mod frame;
mod sme;

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{EntryLane, Routines};
use crate::class::{ClassDesc, ClassId, ClassLayout, RegKind};
use crate::window::WindowKind;

/// This backend (see [`super::Backend`]).
pub(crate) struct Native;

asm_classes! { "rt_a64": Neon => neon, Sve => sve, Gpr => gpr, NeonSve => neonsve, Ssve => ssve, Za => za, Tpidr2 => tpidr2, Zt0 => zt0, Fpmr => fpmr, SveZa => sveza, ZaSm => zasm, SveSsve => svessve }

/// Whether the `neon-sve` window primes p0-p15 and FFR all-true before a syscall, so that only
/// the kernel's discard of the SVE state makes them zero (read by regs.S). Off under user-mode
/// emulation: there the emulator, not a kernel, runs the syscall, and qemu-user (7.2) leaves the
/// SVE-only state alone; the other checks of the transition still run.
#[unsafe(no_mangle)]
static rt_a64_prime_before_syscall: AtomicUsize = AtomicUsize::new(1);

/// The SVE vector length in bytes that the SVE layout was made for (0: none).
static SVE_VL: AtomicUsize = AtomicUsize::new(0);

const HWCAP_FP: u64 = 1 << 0;
const HWCAP_ASIMD: u64 = 1 << 1;
const HWCAP_SVE: u64 = 1 << 22;
const PR_SVE_SET_VL: i32 = 50;
const PR_SVE_GET_VL: i32 = 51;

/// FPSR: the cumulative exception flags and QC vary.
const FPSR: RegKind = RegKind::control(0x0800_009f);
/// FPCR: AHP, DN, FZ and the rounding mode vary; trap enables stay off.
const FPCR: RegKind = RegKind::control(0x07c0_0000);
/// NZCV: the four condition flags (bits 28-31) vary; `mrs` reads every other bit as zero.
const NZCV: RegKind = RegKind::control(0xf000_0000);
/// The integer registers the gpr class holds, in the layout's order. x16 and x17 (IP0/IP1) are
/// the window's loop counter, addresses and branch targets (`cbnz` and `br` leave NZCV alone),
/// sp is the stack and x30 the return address: none of them holds a pattern.
const GPRS: [&str; 28] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x18", "x19", "x20", "x21", "x22", "x23", "x24",
    "x25", "x26", "x27", "x28", "x29",
];

/// `getauxval(kind)`: AT_HWCAP or AT_HWCAP2.
fn auxv(kind: libc::c_ulong) -> u64 {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(kind) as u64 }
}

fn hwcap() -> u64 {
    auxv(libc::AT_HWCAP)
}

/// A vector length of this thread in bytes from `prctl(get)` (PR_SVE_GET_VL, PR_SME_GET_VL),
/// if the facility is there (`present`).
fn get_vl(present: bool, get: i32) -> Option<usize> {
    if !present {
        return None;
    }
    // SAFETY: the GET_VL prctls only read this thread's setting.
    let r = unsafe { libc::prctl(get, 0, 0, 0, 0) };
    (r > 0).then_some((r & 0xffff) as usize)
}

/// Set a vector length of this thread and the threads it creates with `prctl(set)`
/// (PR_SVE_SET_VL, PR_SME_SET_VL), named `what` in errors; the length granted.
fn set_vl(present: bool, set: i32, what: &str, bytes: usize) -> Result<usize, String> {
    if !present {
        return Err(format!("this CPU has no {what}"));
    }
    // SAFETY: the SET_VL prctls change only this thread's vector length.
    let r = unsafe { libc::prctl(set, bytes as libc::c_ulong, 0, 0, 0) };
    if r < 0 {
        return Err(format!("prctl(PR_{what}_SET_VL, {bytes}) failed: {}", std::io::Error::last_os_error()));
    }
    Ok((r & 0xffff) as usize)
}

/// The current SVE vector length in bytes, if SVE is usable.
fn sve_vl() -> Option<usize> {
    get_vl(hwcap() & HWCAP_SVE != 0, PR_SVE_GET_VL)
}

fn pslot(vl: usize) -> usize {
    (vl / 8).div_ceil(8) * 8
}

fn layout(class: ClassId, vl: usize) -> ClassLayout {
    match class {
        ClassId::Neon => {
            let mut l = ClassLayout::data_regs(class, "v", 32, 16);
            l.push("fpsr", 8, FPSR);
            l.push("fpcr", 8, FPCR);
            l
        }
        ClassId::Sve => {
            let mut l = ClassLayout::data_regs(class, "z", 32, vl);
            let (pl, slot) = (vl / 8, pslot(vl));
            for i in 0..16 {
                l.push(&format!("p{i}"), slot, RegKind::Data);
                l.regs.last_mut().expect("pushed").bytes = pl;
            }
            // FFR may only hold a monotonic predicate (WRFFR): its first half true.
            let mut ffr = vec![0u8; slot];
            ffr[..pl / 2].fill(0xff);
            let words = ffr.chunks(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
            l.push("ffr", slot, RegKind::Config(words));
            l.regs.last_mut().expect("pushed").bytes = pl;
            l
        }
        ClassId::Gpr => {
            let mut l = ClassLayout { id: class, words: 0, regs: vec![] };
            GPRS.iter().for_each(|r| l.push(r, 8, RegKind::Data));
            l.push("nzcv", 8, NZCV);
            l
        }
        ClassId::NeonSve => neon_sve_layout(vl),
        // The `sve-za` transition: the SVE class's registers, read after SMSTART ZA.
        ClassId::SveZa => ClassLayout { id: class, ..layout(ClassId::Sve, vl) },
        _ if sme::has(class) => sme::layout(class, vl),
        _ => unreachable!("not an aarch64 class"),
    }
}

/// The `neon-sve` transition (see [`ClassId::NeonSve`]): the SVE class's buffer (z0-z31 at
/// i*VL, p0-p15 and FFR in slots of `pslot(vl)` bytes) then FPSR and FPCR. Each z register is two
/// registers of the layout: `v<i>`, its low 128 bits, which NEON wrote and which must come back
/// (plain data); and `z<i>.hi`, the bits above, which must be zero: the NEON load zeroes them
/// architecturally, and after a syscall Documentation/arch/arm64/sve.rst ("System call
/// behaviour") says "All other bits of Z0..Z31, and all of P0..P15 and FFR become zero on return
/// from a syscall". p0-p15 and FFR must be zero too: the window primes them all-true before a
/// syscall (so only the kernel's discard makes them zero) and all-false otherwise. The data
/// registers come first so that each has a pattern register number below 64.
fn neon_sve_layout(vl: usize) -> ClassLayout {
    let (pl, slot) = (vl / 8, pslot(vl));
    let mut regs = Vec::new();
    let reg = |name: String, offset: usize, bytes: usize, kind: RegKind| crate::class::RegSpec { name, offset, bytes, kind };
    for i in 0..32 {
        regs.push(reg(format!("v{i}"), i * vl, 16, RegKind::Data));
    }
    if vl > 16 {
        for i in 0..32 {
            regs.push(reg(format!("z{i}.hi"), i * vl + 16, vl - 16, RegKind::Zero));
        }
    }
    for i in 0..16 {
        regs.push(reg(format!("p{i}"), 32 * vl + i * slot, pl, RegKind::Zero));
    }
    // FFR: expected zero, but no fault is injected there (sigreturn loads it with WRFFR, whose
    // result for a predicate that is not monotonic is not defined).
    regs.push(reg("ffr".into(), 32 * vl + 16 * slot, pl, RegKind::Config(vec![0; slot / 8])));
    let mut l = ClassLayout { id: ClassId::NeonSve, words: (32 * vl + 17 * slot) / 8, regs };
    l.push("fpsr", 8, FPSR);
    l.push("fpcr", 8, FPCR);
    l
}

/// Where register `r` of the `neon-sve` layout lies in the SVE view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NeonSvePart {
    /// The low 128 bits of z<i> (v<i>).
    V(usize),
    /// The bits of z<i> above 128.
    ZHi(usize),
    P(usize),
    Ffr,
    Fpsr,
    Fpcr,
}

pub(crate) fn neon_sve_part(r: usize, vl: usize) -> Option<NeonSvePart> {
    let hi = if vl > 16 { 32 } else { 0 };
    Some(match r {
        0..=31 => NeonSvePart::V(r),
        _ if r < 32 + hi => NeonSvePart::ZHi(r - 32),
        _ if r < 48 + hi => NeonSvePart::P(r - 32 - hi),
        _ if r == 48 + hi => NeonSvePart::Ffr,
        _ if r == 49 + hi => NeonSvePart::Fpsr,
        _ if r == 50 + hi => NeonSvePart::Fpcr,
        _ => return None,
    })
}

/// `NT_ARM_SVE` (arch/arm64/include/uapi/asm/ptrace.h): a 16-byte `user_sve_header` (size,
/// max_size, then vl and max_vl as u16 at byte 8, flags at byte 12), then either a
/// `user_fpsimd_state` (flags `SVE_PT_REGS_FPSIMD`: the thread has not used SVE since its last
/// system call, and only the low 128 bits of each Z exist) or the SVE registers (flags
/// `SVE_PT_REGS_SVE`: z0-z31 at `vl` bytes each, p0-p15 and FFR at `vl / 8`, then FPSR and FPCR
/// at the next 16-byte boundary). Which one a read returns is the kernel's choice at the stop, so
/// both are maps of the class, each only for a header of its own format and the layout's `vl`.
/// Writes are whole (a partial one was handled differently before 2025's fixes).
pub(crate) fn sve_regsets(layout: &ClassLayout, vl: usize) -> Vec<super::RegsetMap> {
    const NT_ARM_SVE: u32 = 0x405;
    const HEAD: usize = 16;
    let pl = vl / 8;
    let fpsr_sve = (HEAD + 32 * vl + 17 * pl).div_ceil(16) * 16;
    // The header's u64 at byte 8: vl, max_vl, flags (SVE_PT_REGS_MASK: bit 0, 1 = SVE).
    let (at, mask) = (8, 0xffff | 1 << 32);
    let (mut fpsimd, mut full) = (Vec::new(), Vec::new());
    for spec in &layout.regs {
        let w0 = spec.offset / 8;
        let num = |prefix: &str| spec.name.strip_prefix(prefix).and_then(|n| n.parse::<usize>().ok());
        // v0-v31 (neon) or z0-z31 (sve): the Z slots, whose low 128 bits the V registers are.
        let vector = num("v").or(num("z")).filter(|_| matches!(layout.id, ClassId::Neon | ClassId::Sve | ClassId::Ssve));
        match (layout.id, spec.name.as_str(), vector) {
            (_, "fpsr", _) => {
                fpsimd.push((w0, HEAD + 512, 4));
                full.push((w0, fpsr_sve, 4));
            }
            (_, "fpcr", _) => {
                fpsimd.push((w0, HEAD + 516, 4));
                full.push((w0, fpsr_sve + 4, 4));
            }
            (_, _, Some(n)) => {
                for l in 0..spec.bytes / 8 {
                    if l < 2 {
                        fpsimd.push((w0 + l, HEAD + 16 * n + 8 * l, 8));
                    }
                    full.push((w0 + l, HEAD + n * vl + 8 * l, 8));
                }
            }
            (ClassId::Sve | ClassId::Ssve, _, None) => {
                // p0-p15, then FFR, each `vl / 8` bytes: narrow words where that is under 8.
                let at = match (num("p"), spec.name.as_str()) {
                    (Some(n), _) => HEAD + 32 * vl + n * pl,
                    (None, "ffr") => HEAD + 32 * vl + 16 * pl,
                    _ => continue,
                };
                for l in 0..pl.div_ceil(8) {
                    full.push((w0 + l, at + 8 * l, (pl - 8 * l).min(8)));
                }
            }
            _ => {}
        }
    }
    [
        super::RegsetMap::new(NT_ARM_SVE, "NT_ARM_SVE", full).when(at, mask, vl as u64 | 1 << 32),
        super::RegsetMap::new(NT_ARM_SVE, "NT_ARM_SVE (FPSIMD)", fpsimd).when(at, mask, vl as u64),
    ]
    .into_iter()
    .filter(|m| !m.words.is_empty())
    .collect()
}

/// The SVE vector length the layouts were made for.
pub(crate) fn layout_vl() -> usize {
    SVE_VL.load(Ordering::Acquire)
}

fn words(class: ClassId) -> usize {
    match class {
        ClassId::Neon => 66,
        ClassId::Sve | ClassId::SveZa => {
            let vl = SVE_VL.load(Ordering::Acquire);
            (32 * vl + 17 * pslot(vl)) / 8
        }
        ClassId::Gpr => 29,
        ClassId::NeonSve => {
            let vl = SVE_VL.load(Ordering::Acquire);
            (32 * vl + 17 * pslot(vl)) / 8 + 2
        }
        _ if sme::has(class) => sme::words(class),
        _ => usize::MAX,
    }
}

/// The encodings of the system-call instructions the windows use (`svc #0`), as they lie in
/// memory: `arch::at_syscall_exit` looks for them just before an interrupted PC.
const SYSCALL_INSNS: &[&[u8]] = &[&[0x01, 0x00, 0x00, 0xd4]];

/// The aarch64 backend.
/// The bytes regs.S reserves for `rt_entry_state` (a test reads regs.S to check).
pub(super) const ENTRY_STATE_BYTES: usize = 784;

// SAFETY: `routines` names only this folder's regs.S routines, written to the window ABI of
// window_op.h, with the buffer sizes of `detect`'s layouts (checked by the layout tests below).
unsafe impl super::Backend for Native {
    /// The routines restore d8-d15, FPCR and FPSR (FP/SIMD classes) or x18-x30 and sp (gpr);
    /// the clobbers leave d8-d15 and FPCR changed (the gpr clobber only x0-x15 and NZCV).
    fn routines(&self, class: ClassId) -> Option<Routines> {
        asm_routines(class, words(class))
    }

    fn detect(&self) -> Vec<ClassDesc> {
        let hw = hwcap();
        let vl = sve_vl();
        let neon = if hw & (HWCAP_FP | HWCAP_ASIMD) == HWCAP_FP | HWCAP_ASIMD { Ok(()) } else { Err("the CPU has no FP/ASIMD (AT_HWCAP)".to_string()) };
        let sve = match vl {
            Some(_) => Ok(()),
            None => Err("the CPU has no SVE (AT_HWCAP HWCAP_SVE)".to_string()),
        };
        let neon_sve = neon.clone().and(sve.clone());
        // `sve-za` needs SVE and SME (SMSTART ZA); SME's availability is the ssve class's.
        let sve_for_za = sve.clone();
        SVE_VL.store(vl.unwrap_or(16), Ordering::Release);
        rt_a64_prime_before_syscall.store(usize::from(!super::linux::user_mode_emulation()), Ordering::Release);
        let mut descs = vec![
            ClassDesc { layout: layout(ClassId::Neon, 16), available: neon },
            ClassDesc { layout: layout(ClassId::Sve, vl.unwrap_or(16)), available: sve },
            ClassDesc { layout: layout(ClassId::Gpr, 0), available: Ok(()) },
            ClassDesc { layout: layout(ClassId::NeonSve, vl.unwrap_or(16)), available: neon_sve },
        ];
        descs.extend(sme::detect());
        let sme = descs.iter().find(|d| d.id() == ClassId::Ssve).map(|d| d.available.clone()).expect("sme::detect lists ssve");
        let sve_za = sve_for_za.clone().and(sme);
        descs.push(ClassDesc { layout: layout(ClassId::SveZa, vl.unwrap_or(16)), available: sve_za });
        // `sve-ssve` needs SVE and ZA at an SVL a pattern can name (the za class's availability).
        let za = descs.iter().find(|d| d.id() == ClassId::Za).map(|d| d.available.clone()).expect("sme::detect lists za");
        descs.push(ClassDesc { layout: sme::layout(ClassId::SveSsve, sme::layout_svl().max(16)), available: sve_for_za.and(za) });
        super::ENABLED.record(&descs);
        descs
    }

    /// Which bits of the class buffer a window of this kind must preserve, when not all: after a
    /// syscall only bits 0-127 of each z register survive (the SVE syscall ABI). Across `svc` the
    /// kernel keeps NZCV and every integer register but x0, the result
    /// (arch/arm64/kernel/syscall.c); so the gpr class loses x0, x8 (the syscall number the window
    /// loads) and, for a syscall with arguments, x1-x5 (x16/x17 are not in the class). NZCV is
    /// checked.
    fn preserved(&self, class: ClassId, kind: WindowKind) -> Option<Vec<u64>> {
        if sme::has(class) {
            return sme::preserved(class, kind);
        }
        let syscall = kind.has_syscall();
        if class == ClassId::Gpr && syscall {
            let mut keep = vec![u64::MAX; words(class)];
            let mut lose = vec!["x0", "x8"];
            if kind.syscall_args() {
                lose.extend(["x1", "x2", "x3", "x4", "x5"]);
            }
            for r in lose {
                keep[GPRS.iter().position(|g| *g == r).expect("a gpr")] = 0;
            }
            return Some(keep);
        }
        if !matches!(class, ClassId::Sve | ClassId::SveZa) || !syscall {
            return None;
        }
        let vl = SVE_VL.load(Ordering::Acquire);
        let mut mask = vec![0u64; words(class)];
        for z in 0..32 {
            mask[z * vl / 8] = u64::MAX;
            mask[z * vl / 8 + 1] = u64::MAX;
        }
        Some(mask)
    }

    /// Set the SVE vector length (bytes) of this thread and the threads it creates.
    fn set_vector_length(&self, bytes: usize) -> Result<usize, String> {
        set_vl(sve_vl().is_some(), PR_SVE_SET_VL, "SVE", bytes)
    }

    /// `sve-za`: only a thread's first SME instruction traps (a new thread starts with TIF_SME
    /// clear, `arch_dup_task_struct`), so fresh threads make the transition.
    fn first_use_in_window(&self, class: ClassId) -> bool {
        class == ClassId::SveZa
    }

    /// The lengths an SVE or SME register may be cut to by a save or restore of the wrong kind:
    /// the SVE vector length (a streaming register or ZA row handled at the non-streaming
    /// length), the SVL (a non-streaming register handled at the streaming length), and the
    /// 16 bytes of a V register (an FPSIMD-only save or restore of a Z register).
    fn length_named(&self, class: ClassId, bytes: usize) -> Option<String> {
        let (vl, svl) = (SVE_VL.load(Ordering::Acquire), sme::layout_svl());
        let streaming = matches!(class, ClassId::Ssve | ClassId::Za | ClassId::ZaSm | ClassId::SveSsve);
        let sve = matches!(class, ClassId::Sve | ClassId::SveZa | ClassId::Ssve);
        if streaming && bytes == vl && vl != svl {
            Some(format!("the SVE vector length ({vl} bytes), not the streaming one ({svl})"))
        } else if matches!(class, ClassId::Sve | ClassId::SveZa) && bytes == svl && vl != svl {
            Some(format!("the streaming vector length ({svl} bytes), not the SVE one ({vl})"))
        } else if sve && bytes == 16 {
            Some("the 128 bits of a V register: an FPSIMD-only save or restore".to_string())
        } else {
            None
        }
    }

    /// `sve-ssve`: SMSTART SM before the window, a flip of PSTATE.SM at each multiple of 256
    /// that a spin loop's count-down passes (sme.S, SM_FLIP), SMSTOP SM after it (counted
    /// though it is a no-op when the flips, or the syscall, left streaming mode already).
    fn transitions_in_window(&self, class: ClassId, spin: u64, spin_after: u64) -> u64 {
        if class == ClassId::SveSsve { 2 + spin / 256 + spin_after / 256 } else { 1 }
    }

    /// Set the SME streaming vector length (bytes) of this thread and the threads it creates.
    fn set_streaming_vector_length(&self, bytes: usize) -> Result<usize, String> {
        sme::set_vector_length(bytes)
    }

    fn prstatus_pc(&self) -> usize {
        32 * 8
    }
    fn syscall_exit_view(&self, offset: usize) -> Option<u64> {
        // report_syscall_exit() (arch/arm64/kernel/ptrace.c) sets x7 to PTRACE_SYSCALL_EXIT
        // for the stop and puts the thread's x7 back after it.
        const PTRACE_SYSCALL_EXIT: u64 = 1;
        (offset == 7 * 8).then_some(PTRACE_SYSCALL_EXIT)
    }
    fn prstatus_offset(&self, name: &str) -> Option<usize> {
        // struct user_pt_regs (arch/arm64/include/uapi/asm/ptrace.h): regs[31], sp, pc, pstate.
        name.strip_prefix('x')?.parse::<usize>().ok().filter(|&n| n < 31).map(|n| 8 * n)
    }
    /// SVCR and TPIDR2 where SME is on (sme::handler_entry).
    fn handler_entry_state(&self) -> Option<[u64; 2]> {
        sme::handler_entry()
    }

    /// TPIDR2 is the second u64 of `NT_ARM_TLS` where the CPU has SME (sme.rst, "ptrace
    /// extensions"); the probe reads it (sme::entry_lanes).
    fn exec_regset_sites(&self) -> Vec<super::RegsetSites> {
        if sme::layout_svl() == 0 {
            return Vec::new();
        }
        vec![super::RegsetSites { class: ClassId::Tpidr2, note: 0x401, lanes: vec![("tpidr2", 0, 8)] }]
    }

    /// x19-x28 (callee-saved; glibc's `_start` reads x0 and sp).
    fn exec_plant_gprs(&self) -> &'static [&'static str] {
        &["x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28"]
    }
    /// The entry stub's x0-x30, v0-v31, FPSR and FPCR. The initial state after execve: every
    /// FP/SIMD register, FPSR and FPCR zero (Linux: flush_thread -> fpsimd_flush_thread clears
    /// the task's fpsimd_state, arch/arm64/kernel/fpsimd.c) and every integer register zero
    /// (start_thread_common clears pt_regs, arch/arm64/include/asm/processor.h).
    // NT_PRFPREG is `struct user_fpsimd_state` (arch/arm64/include/uapi/asm/ptrace.h): vregs[32]
    // as __uint128_t from byte 0, low lane first.
    fn fp_regset(&self) -> Option<super::FpRegset> {
        Some(super::FpRegset { class: ClassId::Neon, prefix: "v", regs: 32, lanes: 2, base: 0, stride: 16 })
    }
    /// `NT_PRSTATUS` and `NT_PRFPREG` (with FPSR and FPCR, as u32s at 512 and 516), and where
    /// the CPU has SVE, `NT_ARM_SVE` in both of its formats (see [`sve_regsets`]).
    fn regsets(&self, layout: &ClassLayout) -> Vec<super::RegsetMap> {
        let mut out = super::default_regsets(self, layout);
        let control = |name: &str| layout.regs.iter().find(|r| r.name == name).map(|r| r.offset / 8);
        if let (ClassId::Neon, Some(fpsr), Some(fpcr)) = (layout.id, control("fpsr"), control("fpcr")) {
            if let Some(m) = out.iter_mut().find(|m| m.note == super::NT_PRFPREG) {
                m.words.extend([(fpsr, 512, 4), (fpcr, 516, 4)]);
            }
        }
        // The layouts' vector length; a read at another shows a header no map takes.
        if hwcap() & HWCAP_SVE != 0 && matches!(layout.id, ClassId::Neon | ClassId::Sve) {
            out.extend(sve_regsets(layout, SVE_VL.load(Ordering::Acquire)));
        }
        out.extend(sme::regsets(layout));
        out
    }
    fn entry_state(&self) -> Option<Vec<EntryLane>> {
        let (_, u64at) = super::entry_record(0)?;
        let mut out = Vec::new();
        for i in 0..32 {
            for l in 0..2 {
                out.push(EntryLane::new(ClassId::Neon, format!("v{i}"), l, u64at(256 + 16 * i + 8 * l as usize), Some(0)));
            }
        }
        out.push(EntryLane::new(ClassId::Neon, "fpsr", 0, u64at(768), Some(0)));
        out.push(EntryLane::new(ClassId::Neon, "fpcr", 0, u64at(776), Some(0)));
        for i in 0..31 {
            out.push(EntryLane::new(ClassId::Gpr, format!("x{i}"), 0, u64at(8 + 8 * i), Some(0)));
        }
        out.extend(sme::entry_lanes());
        Some(out)
    }

    fn syscall_insns(&self) -> &'static [&'static [u8]] {
        SYSCALL_INSNS
    }

    fn cpuinfo_is_native(&self, cpuinfo: &str) -> bool {
        cpuinfo.contains("CPU implementer") || cpuinfo.contains("CPU architecture")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NT_ARM_SVE's offsets, from the uapi macros worked by hand for a 256-bit VL (vq 2):
    /// SVE_PT_SVE_ZREG_OFFSET(2, n) = 16 + 32n, PREG(2, n) = 16 + 1024 + 4n, FFR = 1104,
    /// FPSR = round_up(1108, 16) = 1120, FPCR = 1124; the FPSIMD format's
    /// `user_fpsimd_state` from 16 (vregs at 16n, fpsr at 512, fpcr at 516).
    #[test]
    fn nt_arm_sve_maps_follow_the_uapi_layout_in_both_formats() {
        let vl = 32;
        let sve = layout(ClassId::Sve, vl);
        let maps = sve_regsets(&sve, vl);
        let full = maps.iter().find(|m| m.name == "NT_ARM_SVE").unwrap();
        let fpsimd = maps.iter().find(|m| m.name == "NT_ARM_SVE (FPSIMD)").unwrap();
        let word = |name: &str, lane: usize| sve.regs.iter().find(|r| r.name == name).unwrap().offset / 8 + lane;
        assert_eq!(full.site(word("z1", 2)), Some((16 + 32 + 16, 8)));
        assert_eq!(full.site(word("p3", 0)), Some((1040 + 12, 4)));
        assert_eq!(full.site(word("ffr", 0)), Some((1104, 4)));
        assert_eq!(fpsimd.site(word("z1", 1)), Some((16 + 16 + 8, 8)));
        assert_eq!(fpsimd.site(word("z1", 2)), None, "the FPSIMD format has the low 128 bits only");
        let neon = layout(ClassId::Neon, 16);
        let maps = sve_regsets(&neon, vl);
        let full = maps.iter().find(|m| m.name == "NT_ARM_SVE").unwrap();
        let nw = |name: &str| neon.regs.iter().find(|r| r.name == name).unwrap().offset / 8;
        assert_eq!(full.site(nw("v2") + 1), Some((16 + 64 + 8, 8)));
        assert_eq!(full.site(nw("fpsr")), Some((1120, 4)));
        assert_eq!(full.site(nw("fpcr")), Some((1124, 4)));
        let fpsimd = maps.iter().find(|m| m.name == "NT_ARM_SVE (FPSIMD)").unwrap();
        assert_eq!(fpsimd.site(nw("fpsr")), Some((16 + 512, 4)));
        // Which one a read is: the header's vl (u16 at 8) and flags (u16 at 12, bit 0 SVE).
        let mut header = vec![0u8; 1200];
        header[8..10].copy_from_slice(&(vl as u16).to_le_bytes());
        header[10..12].copy_from_slice(&256u16.to_le_bytes());
        header[12] = 1;
        assert!(full.describes(&header) && !fpsimd.describes(&header));
        header[12] = 0;
        assert!(!full.describes(&header) && fpsimd.describes(&header));
        header[8] = 64;
        assert!(!full.describes(&header) && !fpsimd.describes(&header), "another vector length is another layout");
    }

    #[test]
    fn layout_sizes_match_the_assembly() {
        assert_eq!(layout(ClassId::Neon, 16).words, 66);
        assert_eq!(layout(ClassId::Gpr, 0).words, words(ClassId::Gpr));
        // x18 follows x15; NZCV is the last word (GPR_NZCV in regs.S).
        assert_eq!(layout(ClassId::Gpr, 0).regs[16].offset, 128);
        assert_eq!(layout(ClassId::Gpr, 0).regs[28].offset, 224);
        for vl in [16, 32, 64, 256] {
            SVE_VL.store(vl, Ordering::Release);
            assert_eq!(layout(ClassId::Sve, vl).words, words(ClassId::Sve), "vl {vl}");
            let l = layout(ClassId::NeonSve, vl);
            assert_eq!(l.words, words(ClassId::NeonSve), "vl {vl}");
            // Every register is where the frame code thinks it is.
            for (r, spec) in l.regs.iter().enumerate() {
                let part = neon_sve_part(r, vl).expect("a register");
                let want = match part {
                    NeonSvePart::V(i) => format!("v{i}"),
                    NeonSvePart::ZHi(i) => format!("z{i}.hi"),
                    NeonSvePart::P(i) => format!("p{i}"),
                    NeonSvePart::Ffr => "ffr".into(),
                    NeonSvePart::Fpsr => "fpsr".into(),
                    NeonSvePart::Fpcr => "fpcr".into(),
                };
                assert_eq!(spec.name, want, "vl {vl} reg {r}");
            }
            assert_eq!(neon_sve_part(l.regs.len(), vl), None);
            // FPSR and FPCR follow FFR's slot (NS_CTRL in regs.S).
            assert_eq!(l.regs[l.regs.len() - 2].offset, 32 * vl + 17 * pslot(vl));
        }
    }
}
