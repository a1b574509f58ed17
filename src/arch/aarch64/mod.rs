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

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::class::{ClassDesc, ClassId, ClassLayout, RegKind};
use super::Routines;
use crate::window::WindowKind;

/// This backend (see [`super::Backend`]).
pub(crate) struct Native;

asm_classes! {
    ClassId::Neon => rt_a64_window_neon, rt_a64_clobber_neon, rt_a64_live_begin_neon, rt_a64_live_end_neon;
    ClassId::Sve => rt_a64_window_sve, rt_a64_clobber_sve, rt_a64_live_begin_sve, rt_a64_live_end_sve;
    ClassId::Gpr => rt_a64_window_gpr, rt_a64_clobber_gpr, rt_a64_live_begin_gpr, rt_a64_live_end_gpr;
}

/// The SVE vector length in bytes that the SVE layout was made for (0: none).
static SVE_VL: AtomicUsize = AtomicUsize::new(0);

const HWCAP_FP: u64 = 1 << 0;
const HWCAP_ASIMD: u64 = 1 << 1;
const HWCAP_SVE: u64 = 1 << 22;
const PR_SVE_SET_VL: i32 = 50;
const PR_SVE_GET_VL: i32 = 51;

/// FPSR: the cumulative exception flags and QC vary.
const FPSR: RegKind = RegKind::Control { valid: 0x0800_009f, fixed: 0, init: 0 };
/// FPCR: AHP, DN, FZ and the rounding mode vary; trap enables stay off.
const FPCR: RegKind = RegKind::Control { valid: 0x07c0_0000, fixed: 0, init: 0 };
/// NZCV: the four condition flags (bits 28-31) vary; `mrs` reads every other bit as zero.
const NZCV: RegKind = RegKind::Control { valid: 0xf000_0000, fixed: 0, init: 0 };
/// The integer registers the gpr class holds, in the layout's order. x16 and x17 (IP0/IP1) are
/// the window's loop counter, addresses and branch targets (`cbnz` and `br` leave NZCV alone),
/// sp is the stack and x30 the return address: none of them holds a pattern.
const GPRS: [&str; 28] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x18", "x19",
    "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29",
];

fn hwcap() -> u64 {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_HWCAP) as u64 }
}

/// The current SVE vector length in bytes, if SVE is usable.
fn sve_vl() -> Option<usize> {
    if hwcap() & HWCAP_SVE == 0 {
        return None;
    }
    // SAFETY: PR_SVE_GET_VL only reads this thread's setting.
    let r = unsafe { libc::prctl(PR_SVE_GET_VL, 0, 0, 0, 0) };
    (r > 0).then_some((r & 0xffff) as usize)
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
        _ => unreachable!("not an aarch64 class"),
    }
}

fn words(class: ClassId) -> usize {
    match class {
        ClassId::Neon => 66,
        ClassId::Sve => {
            let vl = SVE_VL.load(Ordering::Acquire);
            (32 * vl + 17 * pslot(vl)) / 8
        }
        ClassId::Gpr => 29,
        _ => usize::MAX,
    }
}

/// The encodings of the system-call instructions the windows use (`svc #0`), as they lie in
/// memory: `arch::at_syscall_exit` looks for them just before an interrupted PC.
const SYSCALL_INSNS: &[&[u8]] = &[&[0x01, 0x00, 0x00, 0xd4]];

/// The aarch64 backend.
impl super::Backend for Native {
    /// The routines restore d8-d15, FPCR and FPSR (FP/SIMD classes) or x18-x30 and sp (gpr);
    /// the clobbers leave d8-d15 and FPCR changed (the gpr clobber only x0-x15 and NZCV).
    fn routines(&self, class: ClassId) -> Option<Routines> {
        asm_routines(class, words(class))
    }


    fn detect(&self) -> Vec<ClassDesc> {
        let hw = hwcap();
        let vl = sve_vl();
        let neon = if hw & (HWCAP_FP | HWCAP_ASIMD) == HWCAP_FP | HWCAP_ASIMD {
            Ok(())
        } else {
            Err("the CPU has no FP/ASIMD (AT_HWCAP)".to_string())
        };
        let sve = match vl {
            Some(_) => Ok(()),
            None => Err("the CPU has no SVE (AT_HWCAP HWCAP_SVE)".to_string()),
        };
        SVE_VL.store(vl.unwrap_or(16), Ordering::Release);
        let descs = vec![
            ClassDesc { layout: layout(ClassId::Neon, 16), available: neon },
            ClassDesc { layout: layout(ClassId::Sve, vl.unwrap_or(16)), available: sve },
            ClassDesc { layout: layout(ClassId::Gpr, 0), available: Ok(()) },
        ];
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
        if class != ClassId::Sve || !syscall {
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
        if sve_vl().is_none() {
            return Err("this CPU has no SVE".into());
        }
        // SAFETY: PR_SVE_SET_VL changes only this thread's vector length.
        let r = unsafe { libc::prctl(PR_SVE_SET_VL, bytes as libc::c_ulong, 0, 0, 0) };
        if r < 0 {
            return Err(format!("prctl(PR_SVE_SET_VL, {bytes}) failed: {}", std::io::Error::last_os_error()));
        }
        Ok((r & 0xffff) as usize)
    }

    fn name(&self) -> &'static str {
        "aarch64"
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
        }
    }
}
