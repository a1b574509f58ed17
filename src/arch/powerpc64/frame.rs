//! Where each register lies in a powerpc64 signal frame, and how to change it there.
//!
//! `uc_mcontext` (arch/powerpc/include/uapi/asm/sigcontext.h, kernel signal_64.c): `gp_regs`
//! (NIP at 32, MSR at 33), `fp_regs` (f0-f31, FPSCR at 32), and `v_regs`, which points to v0-v31
//! (16 bytes each, stored as the kernel's stvx leaves them), VSCR (the 16 bytes of mfvscr) and
//! VRSAVE, followed by the low doublewords of vs0-vs31 (8 bytes each, at v_regs + 34*16).
//! sigreturn restores FP, and VMX/VSX when the MSR image has MSR_VEC/MSR_VSX set.

use crate::arch::Fault;
use crate::class::ClassId;

const PT_NIP: usize = 32;
const PT_MSR: usize = 33;
const MSR_VEC: u64 = 1 << 25;
const MSR_VSX: u64 = 1 << 23;

/// # Safety
/// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
pub(crate) unsafe fn frame_pc(uc: *mut libc::c_void) -> usize {
    // SAFETY: the caller passes the kernel's ucontext_t.
    unsafe { (*(uc as *const libc::ucontext_t)).uc_mcontext.gp_regs[PT_NIP] as usize }
}

/// # Safety
/// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
pub(crate) unsafe fn inject(uc: *mut libc::c_void, f: &Fault) -> bool {
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

/// Leave the frame as the powerpc save_fpu/save_altivec bug left the registers: f0 (and so
/// vs0's high doubleword) holding the FPSCR image that `mffs f0` produced, or v0 holding the
/// VSCR image of `mfvscr v0` (Linux 4.6-6.6, fixed by 5e1d824f9a28). Used by the `replay`
/// trigger to show what the report says about that bug.
///
/// # Safety
/// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
pub(crate) unsafe fn replay_known_bug(uc: *mut libc::c_void, class: ClassId) -> bool {
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
