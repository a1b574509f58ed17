//! Where each register lies in a powerpc64 signal frame, and how to change it there.
//!
//! `uc_mcontext` (arch/powerpc/include/uapi/asm/sigcontext.h, kernel signal_64.c): `gp_regs`
//! (NIP at 32, MSR at 33), `fp_regs` (f0-f31, FPSCR at 32), and `v_regs`, which points to v0-v31
//! (16 bytes each, stored as the kernel's stvx leaves them), VSCR (the 16 bytes of mfvscr) and
//! VRSAVE, followed by the low doublewords of vs0-vs31 (8 bytes each, at v_regs + 34*16).
//! sigreturn restores FP, and VMX/VSX when the MSR image has MSR_VEC/MSR_VSX set.

use crate::class::ClassId;
use crate::injection::Fault;
use crate::schema::FaultReading;

const PT_NIP: usize = 32;
const PT_MSR: usize = 33;
const MSR_VEC: u64 = 1 << 25;
const MSR_VSX: u64 = 1 << 23;

// ----------------------------------------------------------------------------- fault forensics

const PT_CTR: usize = 35;
const PT_LNK: usize = 36;
const PT_TRAP: usize = 40;
/// ppc64 `__SIGNAL_FRAMESIZE`: the caller frame the kernel leaves below a signal frame.
const SIGNAL_FRAMESIZE: usize = 128;

/// The registers a fault record keeps: `gp_regs` of the frame, in the kernel's pt_regs order.
const FAULT_REGS: &[&str] = &[
    "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "r16", "r17", "r18", "r19", "r20", "r21", "r22",
    "r23", "r24", "r25", "r26", "r27", "r28", "r29", "r30", "r31", "nip", "msr", "orig_r3", "ctr", "lr", "xer", "cr", "softe", "trap", "dar", "dsisr",
    "result",
];
/// Index of the PC in [`FAULT_REGS`].
const FAULT_PC: usize = PT_NIP;

/// The offset of `gp_regs` in a `ucontext_t` (the kernel's `struct ucontext` pads its sigmask
/// to glibc's size, so the layouts agree).
fn gp_regs_offset() -> usize {
    std::mem::offset_of!(libc::ucontext_t, uc_mcontext) + std::mem::offset_of!(libc::mcontext_t, gp_regs)
}

/// Room for a copy of a signal frame's `struct ucontext` (1696 bytes on ppc64).
#[repr(C, align(16))]
struct FrameCopy(std::cell::UnsafeCell<[u8; 4096]>);
// SAFETY: written only by the injecting handler, one injection at a time (arch::linux holds a
// lock across it), and read by the kernel at the sigreturn that follows.
unsafe impl Sync for FrameCopy {}
static COPY: FrameCopy = FrameCopy(std::cell::UnsafeCell::new([0; 4096]));
const UCONTEXT_BYTES: usize = 1696;

impl crate::arch::Frames for super::Native {
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
    unsafe fn frame_pc(&self, uc: *mut libc::c_void) -> usize {
        // SAFETY: the caller passes the kernel's ucontext_t.
        unsafe { (*(uc as *const libc::ucontext_t)).uc_mcontext.gp_regs[PT_NIP] as usize }
    }

    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
    unsafe fn inject(&self, uc: *mut libc::c_void, f: &Fault) -> bool {
        // SAFETY: the caller passes the live frame; v_regs points into it (or is null).
        let (fp, vr, msr) = unsafe {
            let m = &mut (*(uc as *mut libc::ucontext_t)).uc_mcontext;
            (m.fp_regs.as_mut_ptr() as *mut u8, m.v_regs as *mut u8, m.gp_regs[PT_MSR])
        };
        let vec = !vr.is_null() && msr & MSR_VEC != 0;
        let vsx = vec && msr & MSR_VSX != 0;
        // A register loaded with lxvd2x: buffer lane 0 is the high-order doubleword, which the
        // little-endian frame holds in bytes 8-15.
        let vlane = |l: usize| if l == 0 { 8 } else { 0 };
        if f.class == ClassId::Gpr {
            // The gpr layout: r3-r12, r14-r31, then CTR, LR, XER, CR (pt_regs 35-38).
            let at = match f.reg {
                r @ 0..=9 => r + 3,
                r @ 10..=27 => r + 4,
                r @ 28..=31 => r - 28 + 35,
                _ => return false,
            };
            // SAFETY: the caller passes the live frame; gp_regs holds every register of pt_regs.
            unsafe { (*(uc as *mut libc::ucontext_t)).uc_mcontext.gp_regs[at] ^= f.mask };
            return true;
        }
        let (r, l) = (f.reg, f.lane);
        let at: Option<(*mut u8, usize, usize)> = match f.class {
            ClassId::Fpr if r < 32 => Some((fp, 8 * r, 8)),
            ClassId::Fpr => Some((fp, 8 * 32, 4)),
            ClassId::Vmx if r < 32 && vec => Some((vr, 16 * r + vlane(l), 8)),
            ClassId::Vmx if vec => Some((vr, 16 * 32, 4)),
            ClassId::Vsx if r < 32 && l == 0 => Some((fp, 8 * r, 8)),
            ClassId::Vsx if r < 32 && vsx => Some((vr, 16 * 34 + 8 * r, 8)),
            ClassId::Vsx if r < 64 && vec => Some((vr, 16 * (r - 32) + vlane(l), 8)),
            ClassId::Vsx if r == 64 => Some((fp, 8 * 32, 4)),
            ClassId::Vsx if r == 65 && vec => Some((vr, 16 * 32, 4)),
            // fp-vmx-vsx: f0-f31, then v0-v31 in lvx byte order (buffer lane 0 is the
            // low-order doubleword, frame bytes 0-7), FPSCR, VSCR.
            ClassId::FpVmxVsx if r < 32 => Some((fp, 8 * r, 8)),
            ClassId::FpVmxVsx if r < 64 && vec => Some((vr, 16 * (r - 32) + 8 * l, 8)),
            ClassId::FpVmxVsx if r == 64 => Some((fp, 8 * 32, 4)),
            ClassId::FpVmxVsx if r == 65 && vec => Some((vr, 16 * 32, 4)),
            _ => None,
        };
        let Some((base, off, width)) = at else { return false };
        // SAFETY: the offsets lie inside fp_regs (33 doubles) or the VMX/VSX save area of the frame.
        unsafe {
            let p = base.add(off);
            if width == 8 {
                (p as *mut u64).write_unaligned((p as *const u64).read_unaligned() ^ f.mask);
            } else {
                (p as *mut u32).write_unaligned((p as *const u32).read_unaligned() ^ f.mask as u32);
            }
        }
        true
    }

    /// The positive control of fault forensics: make sigreturn leave the thread exactly as the
    /// kernel's fast syscall exit leaves it when a signal frame was set up without
    /// `_TIF_RESTOREALL`: at the vDSO trampoline's `bctrl`, CTR = MSR, r12 = 0, r1 just below an
    /// intact signal frame (a copy of this one, so the thread can be recovered). Returns false when
    /// the vDSO has no trampoline.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now,
    /// and no other injection may run at the same time.
    unsafe fn misreturn(&self, uc: *mut libc::c_void) -> bool {
        use std::sync::atomic::Ordering;
        let start = crate::arch::linux::SIGNAL_TRAMPOLINE.load(Ordering::Acquire) as u64;
        if start == 0 {
            return false;
        }
        let dst = COPY.0.get() as *mut u8;
        // SAFETY: the live frame is a whole rt_sigframe (more than UCONTEXT_BYTES from `uc`); the
        // copy has room; v_regs points inside the frame's ucontext, so its offset applies to the copy.
        unsafe {
            std::ptr::copy_nonoverlapping(uc as *const u8, dst, UCONTEXT_BYTES);
            let m = &mut (*(uc as *mut libc::ucontext_t)).uc_mcontext;
            if !m.v_regs.is_null() {
                let off = (m.v_regs as usize).wrapping_sub(uc as usize);
                if off >= UCONTEXT_BYTES {
                    return false;
                }
                (*(dst as *mut libc::ucontext_t)).uc_mcontext.v_regs = dst.add(off) as *mut _;
            }
            let g = &mut m.gp_regs;
            g[1] = dst as u64 - SIGNAL_FRAMESIZE as u64;
            g[PT_NIP] = start;
            g[PT_CTR] = g[PT_MSR];
            g[12] = 0;
        }
        true
    }

    /// Copy the frame's registers into `out`; returns how many.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
    unsafe fn fault_regs(&self, uc: *mut libc::c_void, out: &mut [u64]) -> usize {
        // SAFETY: the caller passes the kernel's ucontext_t.
        let g = unsafe { &(*(uc as *const libc::ucontext_t)).uc_mcontext.gp_regs };
        let n = FAULT_REGS.len().min(out.len());
        out[..n].copy_from_slice(&g[..n]);
        n
    }

    /// Leave the frame as the powerpc save_fpu/save_altivec bug left the registers: f0 (and so
    /// vs0's high doubleword) holding the FPSCR image that `mffs f0` produced, or v0 holding the
    /// VSCR image of `mfvscr v0` (Linux 4.6-6.6, fixed by 5e1d824f9a28). Used by the `replay`
    /// trigger to show what the report says about that bug.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
    unsafe fn replay_known_bug(&self, uc: *mut libc::c_void, class: ClassId) -> bool {
        // SAFETY: the caller passes the live frame.
        let m = unsafe { &mut (*(uc as *mut libc::ucontext_t)).uc_mcontext };
        match class {
            ClassId::Fpr | ClassId::Vsx => {
                m.fp_regs[0] = m.fp_regs[32];
                true
            }
            ClassId::Vmx if !m.v_regs.is_null() && m.gp_regs[PT_MSR] & MSR_VEC != 0 => {
                // SAFETY: v_regs points to 34 16-byte vectors in the frame: v0-v31, VSCR, VRSAVE.
                unsafe {
                    let v = m.v_regs as *mut [u64; 2];
                    v.write_unaligned(v.add(32).read_unaligned());
                }
                true
            }
            _ => false,
        }
    }

    /// Finish a signal delivery that a kernel bug left half done, when the frame shows exactly
    /// that: the thread reached the vDSO trampoline, whose `bctrl` (call the handler through CTR)
    /// went to CTR's value, not to the handler, so that LR is the address just after it
    /// (`__kernel_sigtramp_rt64`) and the PC is CTR. That is what the scv and sc fast exits leave
    /// when a signal frame was set up without `_TIF_RESTOREALL` (CTR = MSR, or CTR = 0; see
    /// docs/findings/ppc64-fast-exit-signal/README.md). The signal frame the kernel built is
    /// intact at r1 + `__SIGNAL_FRAMESIZE`; resuming at LR runs the trampoline's sigreturn on it, so
    /// the thread goes on where it was interrupted, having lost one handler call. Returns whether it
    /// did so, and what the lost frame says: (signal, trap, resume address), read with checks.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
    unsafe fn recover(&self, uc: *mut libc::c_void) -> (bool, Option<(u64, u64, u64)>) {
        use std::sync::atomic::Ordering;
        let ret = crate::arch::linux::SIGRETURN_TRAMPOLINE.load(Ordering::Acquire) as u64;
        // SAFETY: the caller passes the live frame.
        let g = unsafe { &mut (*(uc as *mut libc::ucontext_t)).uc_mcontext.gp_regs };
        if ret == 0 || g[PT_LNK] != ret || g[PT_NIP] != g[PT_CTR] & !3 {
            return (false, None);
        }
        let frame = g[1] as usize + SIGNAL_FRAMESIZE;
        let mut b = [0u8; 8 * (PT_TRAP + 1)];
        let mut sig = [0u8; 4];
        let signal_at = std::mem::offset_of!(libc::ucontext_t, uc_mcontext) + std::mem::offset_of!(libc::mcontext_t, signal);
        if !crate::arch::linux::read_own_memory(frame + gp_regs_offset(), &mut b) || !crate::arch::linux::read_own_memory(frame + signal_at, &mut sig) {
            return (false, None);
        }
        let word = |k: usize| u64::from_le_bytes(b[8 * k..8 * k + 8].try_into().expect("8 bytes"));
        let lost = (u32::from_le_bytes(sig) as u64, word(PT_TRAP), word(PT_NIP));
        g[PT_NIP] = ret;
        (true, Some(lost))
    }

    /// What the registers of a fault say. `sym` gives a vDSO symbol's address.
    fn fault_readings(&self, regs: &[u64], sym: &dyn Fn(&str) -> Option<u64>) -> Vec<FaultReading> {
        let r = |i: usize| regs.get(i).copied().unwrap_or(0);
        let (pc, msr, ctr, lr) = (r(PT_NIP), r(PT_MSR), r(PT_CTR), r(PT_LNK));
        let mut out = Vec::new();
        // An MSR image: 64-bit mode and problem state (user) set, as every user MSR has.
        const MSR_SF: u64 = 1 << 63;
        const MSR_PR: u64 = 1 << 14;
        let msr_like = |v: u64| v & (MSR_SF | MSR_PR) == MSR_SF | MSR_PR;
        if msr_like(pc | 3) && (pc == msr & !3 || pc == ctr & !3 && msr_like(ctr)) {
            out.push(FaultReading::PcIsStateImage);
        }
        if msr_like(ctr) && (ctr == msr || (ctr ^ msr) & (MSR_SF | MSR_PR | 1) == 0) {
            out.push(FaultReading::CtrIsMsrImage);
        }
        if ctr == 0 {
            out.push(FaultReading::CtrIsZero);
        }
        if pc == ctr & !3 && lr != 0 {
            out.push(FaultReading::JumpedThroughRegister);
        }
        if sym("__kernel_sigtramp_rt64").is_some_and(|a| a == lr) {
            out.push(FaultReading::LinkAfterSignalTrampoline);
        }
        if r(12) == 0 && pc == ctr & !3 {
            out.push(FaultReading::EntryRegisterZero);
        }
        out
    }

    /// The vDSO's signal trampoline (arch/powerpc/kernel/vdso/sigtramp64.S): where the kernel
    /// returns to user space to call a handler (the `bctrl` of `__kernel_start_sigtramp_rt64`) and
    /// the sigreturn that follows it (`__kernel_sigtramp_rt64`). Only the second is exported (6.1:
    /// the first is a local symbol), so the first is the word before it, checked to be `bctrl`.
    /// (0, 0) without them.
    fn signal_trampoline(&self, img: &[u8], base: usize) -> (usize, usize) {
        const BCTRL: u32 = 0x4e80_0421;
        let syms = crate::elf::elf_symbols(img, base);
        let Some(ret) = syms.iter().find(|s| s.name == "__kernel_sigtramp_rt64").map(|s| s.addr) else { return (0, 0) };
        let word = ret.checked_sub(base + 4).and_then(|o| img.get(o..o + 4)).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
        (if word == Some(BCTRL) { ret - 4 } else { 0 }, ret)
    }

    /// The system-call instruction a TRAP value stands for.
    fn syscall_trap_name(&self, trap: u64) -> Option<&'static str> {
        match trap & !0xf {
            0x3000 => Some("scv"),
            0xc00 => Some("sc"),
            _ => None,
        }
    }

    fn fault_layout(&self) -> (&'static [&'static str], usize) {
        (FAULT_REGS, FAULT_PC)
    }

    fn replays_known_bug(&self) -> bool {
        true
    }

    fn needs_trampoline_start(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as the console showed it on Debian's 6.1 kernel: the trampoline's bctrl went to
    /// the MSR image.
    fn bug_frame(tramp: u64) -> libc::ucontext_t {
        // SAFETY: ucontext_t is plain data.
        let mut uc: libc::ucontext_t = unsafe { std::mem::zeroed() };
        let g = &mut uc.uc_mcontext.gp_regs;
        g[PT_MSR] = 0x8000_0000_0280_f033;
        g[PT_CTR] = 0x8000_0000_0280_f033;
        g[PT_NIP] = 0x8000_0000_0280_f030;
        g[PT_LNK] = tramp + 4;
        g[1] = 0x7fff_1234_5000;
        g[3] = 39;
        g[PT_TRAP] = 0x400;
        uc
    }

    #[test]
    fn the_fast_exit_fault_is_read_from_a_synthetic_frame() {
        let tramp = 0x7fff_f7fd_0400u64;
        let mut uc = bug_frame(tramp);
        let mut regs = [0u64; 48];
        // SAFETY: a ucontext_t of our own.
        let n = unsafe { crate::arch::native().fault_regs(&mut uc as *mut _ as *mut libc::c_void, &mut regs) };
        assert_eq!(n, FAULT_REGS.len());
        assert_eq!(FAULT_REGS[FAULT_PC], "nip");
        let sym = |name: &str| (name == "__kernel_sigtramp_rt64").then_some(tramp + 4);
        let got = crate::arch::native().fault_readings(&regs[..n], &sym);
        for want in [
            FaultReading::PcIsStateImage,
            FaultReading::CtrIsMsrImage,
            FaultReading::JumpedThroughRegister,
            FaultReading::LinkAfterSignalTrampoline,
            FaultReading::EntryRegisterZero,
        ] {
            assert!(got.contains(&want), "{want:?} missing from {got:?}");
        }
        assert!(!got.contains(&FaultReading::CtrIsZero));
        // The sc form: CTR zeroed, the PC at 0.
        regs[PT_CTR] = 0;
        regs[PT_NIP] = 0;
        let got = crate::arch::native().fault_readings(&regs[..n], &sym);
        assert!(got.contains(&FaultReading::CtrIsZero) && got.contains(&FaultReading::LinkAfterSignalTrampoline), "{got:?}");
        assert!(!got.contains(&FaultReading::PcIsStateImage));
    }

    #[test]
    fn an_ordinary_fault_has_no_trampoline_readings() {
        let mut uc = bug_frame(0x7fff_f7fd_0400);
        uc.uc_mcontext.gp_regs[PT_NIP] = 0x1000_2000;
        uc.uc_mcontext.gp_regs[PT_LNK] = 0x1000_1ff0;
        uc.uc_mcontext.gp_regs[PT_CTR] = 0x1000_3000;
        uc.uc_mcontext.gp_regs[12] = 0x1000_3000;
        let g = uc.uc_mcontext.gp_regs;
        let got = crate::arch::native().fault_readings(&g[..44], &|_| Some(0x7fff_f7fd_0404));
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(crate::arch::native().syscall_trap_name(0x3000), Some("scv"));
        assert_eq!(crate::arch::native().syscall_trap_name(0xc01), Some("sc"));
        assert_eq!(crate::arch::native().syscall_trap_name(0x900), None);
    }
}
