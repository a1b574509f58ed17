//! powerpc64le backend: FPR (f0-f31, FPSCR), VMX (v0-v31, VSCR) and VSX (vs0-vs63).
//!
//! Classes are detected from `getauxval(AT_HWCAP)` (PPC_FEATURE_HAS_FPU, _HAS_ALTIVEC, _HAS_VSX)
//! and AT_HWCAP2 (ISA 2.07, for the POWER8 moves the assembly uses). FPSCR and VSCR are set to
//! pattern values in every window of the classes that hold them (and checked), so a register
//! that comes back holding the FPSCR or VSCR image is recognisable: the signature of the
//! save_fpu/save_altivec scratch-register bug (`src/signature.rs`). The Linux powerpc syscall ABI
//! keeps all of this state across syscalls, so every window checks every register.

mod frame;

use super::{EntryLane, Routines};
use crate::class::{ClassDesc, ClassId, ClassLayout, RegKind};
use crate::window::WindowKind;

/// This backend (see [`super::Backend`]).
pub(crate) struct Native;

asm_classes! { "rt_ppc": Fpr => fpr, Vmx => vmx, Vsx => vsx, Gpr => gpr, FpVmxVsx => fpvmxvsx }

const PPC_FEATURE_HAS_FPU: u64 = 0x0800_0000;
const PPC_FEATURE_HAS_ALTIVEC: u64 = 0x1000_0000;
const PPC_FEATURE_HAS_VSX: u64 = 0x0000_0080;
const PPC_FEATURE2_ARCH_2_07: u64 = 0x8000_0000;
const PPC_FEATURE2_SCV: u64 = 0x0010_0000;

/// FPSCR: rounding mode, NI, FPRF, FI, FR and the sticky OX/UX/ZX/XX vary; the enable bits
/// stay off and the summary bits (FX, FEX, VX) are left to the hardware.
const FPSCR: RegKind = RegKind::control(0x1e07_f007);
/// VSCR: NJ and SAT vary; Linux starts threads with NJ set.
const VSCR: RegKind = RegKind::Control { valid: 0x0001_0001, fixed: 0, init: 0x0001_0000 };
/// Under qemu-user VSCR is held at NJ: QEMU's signal frames carry VRSAVE but not VSCR
/// (linux-user/ppc/signal.c), so a handler's VSCR survives sigreturn and a VSCR written into a
/// frame is never loaded. Measured: selftest under qemu-ppc64le missed every VSCR fault and a
/// run reported the signal handler's VSCR after sigreturn.
const VSCR_EMULATED: RegKind = RegKind::Control { valid: 0, fixed: 0x0001_0000, init: 0x0001_0000 };

/// XER: SO, OV and the string byte count vary; CA (and CA32) are the gpr window's loop
/// machinery, OV32/CA32 stay clear.
const XER: RegKind = RegKind::control(0xc000_007f);
const XER_CA: u64 = 0x2000_0000 | 0x0004_0000;
/// CR: fields cr1-cr7 vary; cr0 is the gpr window's loop machinery.
const CR: RegKind = RegKind::control(0x0fff_ffff);
const CR0: u64 = 0xf000_0000;
/// The GPRs the gpr class holds (r0: machinery; r1, r2, r13: the ABI's).
const GPRS: [u32; 28] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31];

fn layout(class: ClassId, emulated: bool) -> ClassLayout {
    if class == ClassId::Gpr {
        let mut l = ClassLayout { id: class, words: 0, regs: vec![] };
        GPRS.iter().for_each(|r| l.push(&format!("r{r}"), 8, RegKind::Data));
        l.push("ctr", 8, RegKind::Data);
        l.push("lr", 8, RegKind::Data);
        l.push("xer", 8, XER);
        l.push("cr", 8, CR);
        return l;
    }
    if class == ClassId::FpVmxVsx {
        // f<i> is doubleword 0 of vs<i>, at the start of its 16-byte slot (Power ISA 3.0, 7.2.1:
        // the FPRs are doubleword 0 of VSR 0-31, the VRs are VSR 32-63); see regs.S.
        let reg = |name: String, offset: usize, bytes: usize, kind: RegKind| crate::class::RegSpec { name, offset, bytes, kind };
        let mut regs: Vec<_> = (0..32).map(|i| reg(format!("f{i}"), 16 * i, 8, RegKind::Data)).collect();
        regs.extend((0..32).map(|i| reg(format!("v{i}"), 512 + 16 * i, 16, RegKind::Data)));
        regs.push(reg("fpscr".into(), 1024, 4, FPSCR));
        regs.push(reg("vscr".into(), 1032, 4, if emulated { VSCR_EMULATED } else { VSCR }));
        return ClassLayout { id: class, words: 130, regs };
    }
    let mut l = match class {
        ClassId::Fpr => ClassLayout::data_regs(class, "f", 32, 8),
        ClassId::Vmx => ClassLayout::data_regs(class, "v", 32, 16),
        ClassId::Vsx => ClassLayout::data_regs(class, "vs", 64, 16),
        _ => unreachable!("not a powerpc64 class"),
    };
    if class != ClassId::Vmx {
        l.push("fpscr", 8, FPSCR);
        l.regs.last_mut().expect("pushed").bytes = 4;
    }
    if class != ClassId::Fpr {
        l.push("vscr", 8, if emulated { VSCR_EMULATED } else { VSCR });
        l.regs.last_mut().expect("pushed").bytes = 4;
    }
    l
}

fn words(class: ClassId) -> usize {
    match class {
        ClassId::Fpr => 33,
        ClassId::Vmx => 65,
        ClassId::Vsx => 130,
        ClassId::Gpr => 32,
        ClassId::FpVmxVsx => 130,
        _ => usize::MAX,
    }
}

/// The encodings of the system-call instructions the windows use (`sc` and `scv 0`), as they lie in
/// memory: `arch::at_syscall_exit` looks for them just before an interrupted PC.
const SYSCALL_INSNS: &[&[u8]] = &[&[0x02, 0x00, 0x00, 0x44], &[0x01, 0x00, 0x00, 0x44]];

/// The powerpc64 backend.
/// The bytes regs.S reserves for `rt_entry_state` (a test reads regs.S to check).
pub(super) const ENTRY_STATE_BYTES: usize = 1584;

// SAFETY: `routines` names only this folder's regs.S routines, written to the window ABI of
// window_op.h, with the buffer sizes of `detect`'s layouts (checked by the layout tests below).
unsafe impl super::Backend for Native {
    /// The routines save and restore the non-volatile registers, FPSCR and VSCR they use; the
    /// clobbers leave them changed (the handler's last act).
    fn routines(&self, class: ClassId) -> Option<Routines> {
        asm_routines(class, words(class))
    }

    fn detect(&self) -> Vec<ClassDesc> {
        // SAFETY: getauxval has no preconditions.
        let (hw, hw2) = unsafe { (libc::getauxval(libc::AT_HWCAP) as u64, libc::getauxval(libc::AT_HWCAP2) as u64) };
        let p8 = hw2 & PPC_FEATURE2_ARCH_2_07 != 0;
        let avail = |class: ClassId| -> Result<(), String> {
            match class {
                ClassId::Fpr if hw & PPC_FEATURE_HAS_FPU == 0 => Err("the CPU has no FPU (PPC_FEATURE_HAS_FPU)".into()),
                ClassId::Fpr | ClassId::Gpr => Ok(()),
                ClassId::Vmx if hw & PPC_FEATURE_HAS_ALTIVEC == 0 => Err("the CPU has no AltiVec (PPC_FEATURE_HAS_ALTIVEC)".into()),
                ClassId::Vsx | ClassId::FpVmxVsx if hw & PPC_FEATURE_HAS_VSX == 0 => Err("the CPU has no VSX (PPC_FEATURE_HAS_VSX)".into()),
                _ if !p8 => Err("regtorture's vector code needs POWER8 or later (ISA 2.07)".into()),
                _ => Ok(()),
            }
        };
        let descs: Vec<ClassDesc> = [ClassId::Fpr, ClassId::Vmx, ClassId::Vsx, ClassId::Gpr, ClassId::FpVmxVsx]
            .into_iter()
            .map(|c| ClassDesc { layout: layout(c, super::linux::user_mode_emulation()), available: avail(c) })
            .collect();
        super::ENABLED.record(&descs);
        descs
    }

    /// FP, VMX and VSX keep every bit across every window (the syscall ABI preserves them). The
    /// gpr class never checks its loop machinery (cr0, XER[CA]), and across a syscall loses what
    /// Documentation/arch/powerpc/syscall64-abi.rst makes volatile: for `sc` r3-r12, CTR, XER and
    /// cr0; for `scv 0` also LR, cr1 and cr5-cr7.
    /// The fp-vmx-vsx transition checks every bit but doubleword 1 of vs0-vs31, which the FP
    /// loads of its old view leave undefined (Power ISA 3.0, 7.2.1.1).
    fn preserved(&self, class: ClassId, kind: WindowKind) -> Option<Vec<u64>> {
        if class == ClassId::FpVmxVsx {
            let mut keep = vec![u64::MAX; words(class)];
            (0..32).for_each(|i| keep[2 * i + 1] = 0);
            return Some(keep);
        }
        if class != ClassId::Gpr {
            return None;
        }
        let l = layout(class, false);
        let at = |name: &str| l.regs.iter().position(|r| r.name == name).expect("a gpr");
        let mut keep = vec![u64::MAX; l.words];
        keep[at("xer")] = !XER_CA;
        keep[at("cr")] = !CR0;
        if kind.has_syscall() {
            for r in (3..=12).map(|r| format!("r{r}")).chain(["ctr".into(), "xer".into()]) {
                keep[at(&r)] = 0;
            }
            if kind.uses_scv() {
                keep[at("lr")] = 0;
                keep[at("cr")] = 0x00ff_f000; // cr2-cr4
            }
        }
        Some(keep)
    }

    /// Whether this kernel and CPU provide `scv 0` (AT_HWCAP2 PPC_FEATURE2_SCV: POWER9 or later,
    /// Linux 5.9 or later): glibc then issues every system call with it.
    fn has_scv(&self) -> bool {
        // SAFETY: getauxval has no preconditions.
        let hw2 = unsafe { libc::getauxval(libc::AT_HWCAP2) } as u64;
        hw2 & PPC_FEATURE2_SCV != 0
    }

    fn prstatus_pc(&self) -> usize {
        32 * 8
    }
    fn prstatus_offset(&self, name: &str) -> Option<usize> {
        // struct pt_regs (arch/powerpc/include/uapi/asm/ptrace.h): gpr[32], nip, msr,
        // orig_gpr3, ctr, link, xer, ccr, ...
        match name {
            "ctr" => Some(35 * 8),
            "lr" => Some(36 * 8),
            _ => name.strip_prefix('r')?.parse::<usize>().ok().filter(|&n| n < 32).map(|n| 8 * n),
        }
    }
    /// r14-r31 (non-volatile; the kernel hands `_start` r1, r2, r3-r7 and r12, never these).
    fn exec_plant_gprs(&self) -> &'static [&'static str] {
        &["r14", "r15", "r16", "r17", "r18", "r19", "r20", "r21", "r22", "r23", "r24", "r25", "r26", "r27", "r28", "r29", "r30", "r31"]
    }
    /// Besides `NT_PRSTATUS` and `NT_PRFPREG`: `NT_PPC_VMX` (vr0-vr31 as the kernel's `stvx`
    /// stores them, 16 bytes each, then VSCR and VRSAVE: ptrace-altivec.c `vr_get`) and
    /// `NT_PPC_VSX` (doubleword 1 of vs0-vs31, 8 bytes each: ptrace-vsx.c `vsr_get`). The
    /// class buffers hold each register as `stxvd2x` stores it, doubleword 0 first; `stvx` on
    /// a little-endian kernel stores doubleword 1 first.
    fn regsets(&self, layout: &ClassLayout) -> Vec<super::RegsetMap> {
        const NT_PPC_VMX: u32 = 0x100;
        const NT_PPC_VSX: u32 = 0x102;
        let mut out = super::default_regsets(self, layout);
        let num = |prefix: &str, name: &str| name.strip_prefix(prefix).and_then(|n| n.parse::<usize>().ok());
        let lanes = layout.data_lanes().map(|(w, r, l)| (w, &layout.regs[r].name, l));
        let (mut vmx, mut vsx, mut fp) = (Vec::new(), Vec::new(), Vec::new());
        for (w, name, l) in lanes {
            let vr = |n: usize| (w, 16 * n + 8 * (1 - l), 8);
            match (layout.id, num("v", name), num("vs", name)) {
                (ClassId::Vmx, Some(n), _) if n < 32 => vmx.push(vr(n)),
                (ClassId::Vsx, _, Some(n)) if n >= 32 => vmx.push(vr(n - 32)),
                (ClassId::Vsx, _, Some(n)) if l == 1 => vsx.push((w, 8 * n, 8)),
                (ClassId::Vsx, _, Some(n)) => fp.push((w, 8 * n, 8)),
                _ => {}
            }
        }
        for (note, name, words) in [(NT_PPC_VMX, "NT_PPC_VMX", vmx), (NT_PPC_VSX, "NT_PPC_VSX", vsx), (super::NT_PRFPREG, "NT_PRFPREG", fp)] {
            if !words.is_empty() {
                out.push(super::RegsetMap::new(note, name, words).partial());
            }
        }
        out
    }
    /// The entry stub's r0-r31, f0-f31, v0-v31, doubleword 1 of vs0-vs31, FPSCR and VSCR. The
    /// initial state after execve: FPRs, VRs, VSRs and FPSCR zero, as Linux's start_thread sets
    /// them (arch/powerpc/kernel/process.c: fp_state and vr_state cleared); VSCR has no rule
    /// (below). The integer registers carry what the kernel passes to _start: only a pattern
    /// value there is a finding.
    // NT_PRFPREG is fpr[32] then FPSCR, 8 bytes each (arch/powerpc/kernel/ptrace/ptrace-fpu.c
    // fpr_get; with VSX, the FPRs are the VSRs' high doublewords).
    fn fp_regset(&self) -> Option<super::FpRegset> {
        Some(super::FpRegset { class: ClassId::Fpr, prefix: "f", regs: 32, lanes: 1, base: 0, stride: 8 })
    }
    fn entry_state(&self) -> Option<Vec<EntryLane>> {
        let (st, u64at) = super::entry_record(0)?;
        let mut out = Vec::new();
        for i in 0..32 {
            out.push(EntryLane::new(ClassId::Fpr, format!("f{i}"), 0, u64at(264 + 8 * i), Some(0)));
        }
        out.push(EntryLane::new(ClassId::Fpr, "fpscr", 0, u64at(1552) & 0xffff_ffff, Some(0)));
        for i in 0..32 {
            // stvx in little-endian mode: bytes 0-7 are the low-order doubleword (lane 1 of the
            // vmx layout, whose lane 0 is the high-order doubleword).
            out.push(EntryLane::new(ClassId::Vmx, format!("v{i}"), 0, u64at(528 + 16 * i + 8), Some(0)));
            out.push(EntryLane::new(ClassId::Vmx, format!("v{i}"), 1, u64at(528 + 16 * i), Some(0)));
        }
        // VSCR: start_thread means NJ set ("vr_state.vscr.u[3] = 0x00010000"), but on a
        // little-endian kernel load_up_altivec's lvx puts u[0], not u[3], in the word mtvscr
        // reads, so a ppc64le process starts with VSCR 0 (measured: Debian 6.1 ppc64el), while
        // QEMU's user mode starts it with NJ. Both are accepted: no rule here (docs/transitions.md).
        let vscr = u32::from_le_bytes(st[1568..1572].try_into().expect("4 bytes")) as u64;
        out.push(EntryLane::new(ClassId::Vmx, "vscr", 0, vscr, None));
        for i in 0..32 {
            // stxvd2x: bytes 8-15 are doubleword 1 (doubleword 0 is f<i>).
            out.push(EntryLane::new(ClassId::Vsx, format!("vs{i}"), 1, u64at(1040 + 16 * i + 8), Some(0)));
        }
        for i in 0..32 {
            out.push(EntryLane::new(ClassId::Gpr, format!("r{i}"), 0, u64at(8 + 8 * i), None));
        }
        Some(out)
    }

    fn syscall_insns(&self) -> &'static [&'static [u8]] {
        SYSCALL_INSNS
    }

    fn cpuinfo_is_native(&self, cpuinfo: &str) -> bool {
        cpuinfo.lines().any(|l| l.starts_with("cpu\t") && (l.contains("POWER") || l.contains("PPC")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sizes_match_the_assembly() {
        for c in [ClassId::Fpr, ClassId::Vmx, ClassId::Vsx, ClassId::Gpr, ClassId::FpVmxVsx] {
            assert_eq!(layout(c, false).words, words(c), "{c}");
        }
        assert_eq!(layout(ClassId::Fpr, false).regs[32].offset, 256);
        assert_eq!(layout(ClassId::Vmx, false).regs[32].offset, 512);
        assert_eq!(layout(ClassId::Vsx, false).regs[64].offset, 1024);
        assert_eq!(layout(ClassId::Vsx, false).regs[65].offset, 1032);
    }
}
