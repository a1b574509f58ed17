//! aarch64 SME (Documentation/arch/arm64/sme.rst): the classes `ssve` (streaming SVE), `za`
//! (the ZA array), `tpidr2` (TPIDR2_EL0), and, where the CPU has them, `zt0` (SME2) and `fpmr`
//! (FP8).
//!
//! Each is detected from `getauxval(AT_HWCAP2)`; the streaming vector length (SVL) comes from
//! `prctl(PR_SME_GET_VL)` and sizes `ssve` and `za`. The rules the windows check, by section of
//! sme.rst:
//! - 4, "System call behaviour": a syscall preserves PSTATE.ZA and, with it on, ZA and ZT0; it
//!   clears PSTATE.SM and handles the SVE registers as the SVE ABI does, so across a syscall
//!   `ssve` keeps only the low 128 bits of each z ([`preserved`]), read after the window in
//!   non-streaming mode (sme.S).
//! - 5, "Signal handling" and "Signal return": a handler starts with SM and ZA off; sigreturn
//!   restores ZA from the `za_context` record, TPIDR2 from `tpidr2_context`, and the streaming
//!   registers from an `sve_context` flagged `SVE_SIG_FLAG_SM` (the frames module injects there).
//! - 1, "General": TPIDR2 is per thread, kept at clone without CLONE_SETTLS.
//! - 7, "ptrace extensions": `NT_ARM_SSVE` (the `NT_ARM_SVE` format), `NT_ARM_ZA` (a 16-byte
//!   `user_za_header`, then the rows), `NT_ARM_ZT`, and TPIDR2 as `NT_ARM_TLS`'s second word.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::class::{ClassDesc, ClassId, ClassLayout, RegKind};
use crate::window::WindowKind;

const HWCAP2_SME: u64 = 1 << 23;
const HWCAP2_SME_FA64: u64 = 1 << 30;
const HWCAP2_SME2: u64 = 1 << 37;
const HWCAP2_FPMR: u64 = 1 << 48;
const PR_SME_SET_VL: i32 = 63;
const PR_SME_GET_VL: i32 = 64;

/// Whether streaming code may read and write FFR (FA64), read by sme.S.
#[unsafe(no_mangle)]
static rt_a64_ssve_ffr: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" {
    /// sme.S: TPIDR2_EL0 and SVCR into `out[0]` and `out[1]`.
    fn rt_a64_sme_entry(out: *mut u64);
}

/// SVCR and TPIDR2, read with two MRS (sme.S); no allocation, so a signal handler may call it.
///
/// # Safety
/// SME must be enabled for this thread (the MRS trap otherwise).
unsafe fn svcr_tpidr2() -> [u64; 2] {
    let mut v = [0u64; 2];
    // SAFETY: the routine stores TPIDR2 and SVCR into the two words of `v` and touches nothing
    // else; the caller promises SME is on, so neither MRS traps.
    unsafe { rt_a64_sme_entry(v.as_mut_ptr()) };
    [v[1], v[0]]
}

/// The SME state the execve check's probe finds (after the C runtime's start, which in this
/// static Debian 12 glibc touches neither): TPIDR2 must be 0 (`tls_thread_flush` at exec,
/// arch/arm64/kernel/process.c) and SVCR 0, streaming mode and ZA off (`fpsimd_flush_thread`
/// sets `thread.svcr = 0` and frees the SME state; sme.rst "System call behaviour": execve is
/// the exception to what a syscall preserves). The caller of execve had ZA on with values and
/// TPIDR2 holding a pattern (the classes' clobbers), so a value of its there is a leak.
/// Nothing where the CPU or kernel has no SME.
pub(super) fn entry_lanes() -> Vec<super::super::EntryLane> {
    use super::super::EntryLane;
    if sme_vl().is_none() {
        return vec![];
    }
    // SAFETY: SME is enabled (PR_SME_GET_VL answered).
    let [svcr, tpidr2] = unsafe { svcr_tpidr2() };
    vec![EntryLane::new(ClassId::Tpidr2, "tpidr2", 0, tpidr2, Some(0)), EntryLane::new(ClassId::Za, "svcr", 0, svcr, Some(0))]
}

/// Whether the signal handlers read SVCR and TPIDR2 at their entry: SME is on, and a kernel
/// delivers the signals (under qemu-user the emulator does, and QEMU 7.2 leaves TPIDR2 set).
static HANDLER_CHECK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// SVCR and TPIDR2 as a signal handler finds them, where SME is on and a kernel delivered the
/// signal (no prctl in a handler: `detect` decided): sme.rst "Signal handling" says both are 0.
pub(super) fn handler_entry() -> Option<[u64; 2]> {
    if !HANDLER_CHECK.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: SME is enabled (detect found an SVL).
    Some(unsafe { svcr_tpidr2() })
}

/// Whether `class` is one of this module's.
pub(super) fn has(class: ClassId) -> bool {
    matches!(class, ClassId::Ssve | ClassId::Za | ClassId::ZaSm | ClassId::Tpidr2 | ClassId::Zt0 | ClassId::Fpmr | ClassId::SveSsve)
}

/// The SVL in bytes the layouts were made for (0: no SME).
static SME_VL: AtomicUsize = AtomicUsize::new(0);

/// The most ZA rows a pattern can name: a pattern register number is below 64.
const MAX_ZA_ROWS: usize = 64;

/// FPMR's fields (Arm ARM, FPMR): F8S1, F8S2, F8D (bits 0-8), OSM and OSC (14, 15), LSCALE
/// (16-22), NSCALE (24-31) and LSCALE2 (32-37) vary; the rest is RES0.
const FPMR: RegKind = RegKind::Control { valid: 0x3f_ff7f_c1ff, fixed: 0, init: 0 };

fn hwcap2() -> u64 {
    super::auxv(libc::AT_HWCAP2)
}

/// The current SVL in bytes, if SME is usable.
fn sme_vl() -> Option<usize> {
    super::get_vl(hwcap2() & HWCAP2_SME != 0, PR_SME_GET_VL)
}

/// Set the SVL (bytes) of this thread and the threads it creates; the SVL set.
pub(super) fn set_vector_length(bytes: usize) -> Result<usize, String> {
    super::set_vl(sme_vl().is_some(), PR_SME_SET_VL, "SME", bytes)
}

/// The SVL the layouts were made for.
pub(crate) fn layout_svl() -> usize {
    SME_VL.load(Ordering::Acquire)
}

/// The layout of an SME class at SVL `svl`.
pub(super) fn layout(class: ClassId, svl: usize) -> ClassLayout {
    match class {
        ClassId::Ssve => ssve_layout(svl, rt_a64_ssve_ffr.load(Ordering::Acquire) != 0),
        ClassId::Za | ClassId::ZaSm => ClassLayout::data_regs(class, "za", svl.min(MAX_ZA_ROWS), svl),
        ClassId::SveSsve => sve_ssve_layout(svl, super::layout_vl().max(16)),
        ClassId::Tpidr2 | ClassId::Zt0 | ClassId::Fpmr => {
            let mut l = ClassLayout { id: class, words: 0, regs: vec![] };
            match class {
                ClassId::Tpidr2 => l.push("tpidr2", 8, RegKind::Data),
                ClassId::Zt0 => l.push("zt0", 64, RegKind::Data),
                _ => l.push("fpmr", 8, FPMR),
            }
            l
        }
        _ => unreachable!("not an SME class"),
    }
}

/// `ssve`: the SVE class's layout at the SVL; FFR varies only where streaming code may set it
/// (`fa64`), else it is a constant zero.
fn ssve_layout(svl: usize, fa64: bool) -> ClassLayout {
    let mut l = super::layout(ClassId::Sve, svl);
    l.id = ClassId::Ssve;
    if !fa64 {
        let ffr = l.regs.last_mut().expect("ffr");
        ffr.kind = RegKind::Config(vec![0; super::pslot(svl) / 8]);
    }
    l
}

/// `sve-ssve` (see [`ClassId::SveSsve`]): the ZA rows at SVL `svl` (the data, so each has a
/// pattern register number below 64), then the SVE class's z0-z31, p0-p15 and FFR at the SVE VL
/// `vl`, all of which must be zero after the window's last SMSTOP SM.
fn sve_ssve_layout(svl: usize, vl: usize) -> ClassLayout {
    let mut l = ClassLayout::data_regs(ClassId::SveSsve, "za", svl.min(MAX_ZA_ROWS), svl);
    let sve = super::layout(ClassId::Sve, vl);
    let base = l.words * 8;
    for mut r in sve.regs {
        r.offset += base;
        r.kind = RegKind::Zero;
        l.regs.push(r);
    }
    l.words += sve.words;
    l
}

/// The words of an SME class's buffers at the layouts' SVL. Called by the signal handlers (the
/// clobbers and the live ranges go through `routines`): arithmetic only, no allocation.
pub(super) fn words(class: ClassId) -> usize {
    words_at(class, layout_svl().max(16), super::layout_vl().max(16))
}

/// [`words`] at SVL `svl` and SVE VL `vl`.
fn words_at(class: ClassId, svl: usize, vl: usize) -> usize {
    match class {
        ClassId::Ssve => (32 * svl + 17 * super::pslot(svl)) / 8,
        ClassId::Za | ClassId::ZaSm => svl.min(MAX_ZA_ROWS) * svl / 8,
        ClassId::SveSsve => svl.min(MAX_ZA_ROWS) * svl / 8 + (32 * vl + 17 * super::pslot(vl)) / 8,
        ClassId::Zt0 => 8,
        _ => 1,
    }
}

/// The SME classes as this machine has them.
pub(super) fn detect() -> Vec<ClassDesc> {
    let hw = hwcap2();
    let svl = sme_vl();
    rt_a64_ssve_ffr.store(usize::from(hw & HWCAP2_SME_FA64 != 0), Ordering::Release);
    SME_VL.store(svl.unwrap_or(0), Ordering::Release);
    HANDLER_CHECK.store(svl.is_some() && !super::super::linux::user_mode_emulation(), Ordering::Release);
    let sme = match svl {
        Some(_) => Ok(()),
        None if hw & HWCAP2_SME != 0 => Err("the kernel refuses PR_SME_GET_VL".to_string()),
        None => Err("the CPU or kernel has no SME (AT_HWCAP2 HWCAP2_SME)".to_string()),
    };
    let za = match (svl, &sme) {
        (Some(v), Ok(())) if v > MAX_ZA_ROWS => {
            Err(format!("ZA has {v} rows at the SVL of {v} bytes, a pattern names at most {MAX_ZA_ROWS}: use --sme-vl {MAX_ZA_ROWS} or less"))
        }
        _ => sme.clone(),
    };
    let with = |bit: u64, what: &str| if hw & bit != 0 { sme.clone() } else { Err(format!("the CPU or kernel has no {what}")) };
    let v = svl.unwrap_or(16);
    vec![
        ClassDesc { layout: layout(ClassId::Ssve, v), available: sme.clone() },
        ClassDesc { layout: layout(ClassId::Za, v), available: za.clone() },
        ClassDesc { layout: layout(ClassId::ZaSm, v), available: za },
        ClassDesc { layout: layout(ClassId::Tpidr2, v), available: sme.clone() },
        ClassDesc { layout: layout(ClassId::Zt0, v), available: with(HWCAP2_SME2, "SME2 and its ZT0 (AT_HWCAP2 HWCAP2_SME2)") },
        ClassDesc {
            layout: layout(ClassId::Fpmr, v),
            available: if hw & HWCAP2_FPMR != 0 { Ok(()) } else { Err("the CPU or kernel has no FPMR (AT_HWCAP2 HWCAP2_FPMR)".to_string()) },
        },
    ]
}

/// What an SME class keeps across a window of `kind`, when not everything: ZA, ZT0, TPIDR2 and
/// FPMR are kept whole; a syscall leaves streaming mode, and of the streaming registers nothing
/// is kept. sme.rst section 4 says the SVE registers are then "handled as per the standard SVE
/// ABI", which keeps the low 128 bits of each z; but the kernel leaves streaming mode with
/// SMSTOP SM (`fp_user_discard`, arch/arm64/kernel/syscall.c), which zeroes every z
/// architecturally, and QEMU's user mode does the same. Which one is right is the maintainers'
/// call: until then no lane of `ssve` is checked across a syscall (the windows still make the
/// syscall in streaming mode, and the signal and preemption paths around it are checked).
pub(super) fn preserved(class: ClassId, kind: WindowKind) -> Option<Vec<u64>> {
    (class == ClassId::Ssve && kind.has_syscall()).then(|| vec![0u64; words(class)])
}

/// The ptrace views of the SME classes (sme.rst section 7): `NT_ARM_SSVE` in the `NT_ARM_SVE`
/// format (streaming registers, for a header at the layouts' SVL with `SVE_PT_REGS_SVE`),
/// `NT_ARM_ZA` (a 16-byte `user_za_header`, vl at byte 8, then the rows), `NT_ARM_ZT` (the
/// 64 bytes of ZT0), `NT_ARM_TLS`'s second word (TPIDR2) and `NT_ARM_FPMR`.
pub(super) fn regsets(layout: &ClassLayout) -> Vec<super::super::RegsetMap> {
    use super::super::RegsetMap;
    const NT_ARM_TLS: u32 = 0x401;
    const NT_ARM_SSVE: u32 = 0x40b;
    const NT_ARM_ZA: u32 = 0x40c;
    const NT_ARM_ZT: u32 = 0x40d;
    const NT_ARM_FPMR: u32 = 0x40e;
    let svl = layout_svl();
    let whole = |head: usize| layout.regs.iter().flat_map(move |r| (0..r.lanes()).map(move |l| (r.offset / 8 + l, head + r.offset + 8 * l, 8))).collect();
    match layout.id {
        ClassId::Ssve => super::sve_regsets(layout, svl)
            .into_iter()
            .filter(|m| m.name == "NT_ARM_SVE")
            .map(|mut m| {
                m.note = NT_ARM_SSVE;
                m.name = "NT_ARM_SSVE";
                m
            })
            .collect(),
        ClassId::Za | ClassId::ZaSm => vec![RegsetMap::new(NT_ARM_ZA, "NT_ARM_ZA", whole(16)).when(8, 0xffff, svl as u64)],
        ClassId::Zt0 => vec![RegsetMap::new(NT_ARM_ZT, "NT_ARM_ZT", whole(0))],
        ClassId::Tpidr2 => vec![RegsetMap::new(NT_ARM_TLS, "NT_ARM_TLS", whole(8))],
        ClassId::Fpmr => vec![RegsetMap::new(NT_ARM_FPMR, "NT_ARM_FPMR", whole(0))],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ZA layout is the uapi's: row n at n*SVL, SVL bytes each; its NT_ARM_ZA map puts row
    /// n after the 16-byte header (ZA_PT_ZAV_OFFSET).
    #[test]
    fn za_rows_follow_the_uapi_layout() {
        let l = layout(ClassId::Za, 32);
        assert_eq!((l.regs.len(), l.words), (32, 32 * 32 / 8));
        assert_eq!((l.regs[3].name.as_str(), l.regs[3].offset, l.regs[3].bytes), ("za3", 96, 32));
        let big = layout(ClassId::Za, 256);
        assert_eq!(big.regs.len(), MAX_ZA_ROWS, "a pattern names at most 64 registers");
    }

    /// `words` (which the signal handlers use, so it computes instead of building a layout) and
    /// the layouts agree at every SVL. (Pure: no global the other tests' `detect` sets.)
    #[test]
    fn words_agree_with_the_layouts() {
        for svl in [16, 32, 64, 128, 256] {
            for c in [ClassId::Ssve, ClassId::Za, ClassId::ZaSm, ClassId::Tpidr2, ClassId::Zt0, ClassId::Fpmr] {
                assert_eq!(words_at(c, svl, 16), layout(c, svl).words, "{c} at SVL {svl}");
            }
            for vl in [16, 32, 256].into_iter().filter(|_| svl <= MAX_ZA_ROWS) {
                let l = sve_ssve_layout(svl, vl);
                assert_eq!(words_at(ClassId::SveSsve, svl, vl), l.words, "sve-ssve at SVL {svl}, VL {vl}");
                // z0 follows the SVL x SVL bytes of ZA (sme.S; at an SVL of 64 or less, where the
                // class runs); the data come first.
                let z0 = l.regs.iter().position(|r| r.name == "z0").expect("z0");
                assert_eq!((z0, l.regs[z0].offset), (svl, svl * svl));
                assert!(l.regs[z0..].iter().all(|r| r.kind == RegKind::Zero));
            }
        }
    }

    /// Without FA64, the streaming FFR is a constant zero: streaming code cannot set it.
    #[test]
    fn the_streaming_ffr_is_constant_without_fa64() {
        let l = ssve_layout(32, false);
        assert_eq!(l.regs.last().map(|r| (r.name.as_str(), matches!(r.kind, RegKind::Config(_)))), Some(("ffr", true)));
        assert_eq!(l.words, (32 * 32 + 17 * super::super::pslot(32)) / 8);
    }
}
