//! Where each register lies in an x86_64 signal frame, and how to change it there.
//!
//! On a machine with XSAVE, `uc_mcontext.fpregs` points to the XSAVE image the kernel wrote
//! (`copy_fpstate_to_sigframe`, user format: never compacted): the 512-byte legacy FXSAVE area
//! (FCW at 0, MXCSR at 24, st(i) at 32 + 16i, xmm(i) at 160 + 16i), the XSAVE header at 512
//! (XSTATE_BV), and each extended component at the offset CPUID.(0xD, component).EBX gives:
//! YMM_Hi128 (2), opmask (5), ZMM_Hi256 (6), Hi16_ZMM (7), XTILEDATA (18). sigreturn
//! (`__fpu_restore_sig`) loads that image back with XRSTOR, so a value changed here becomes the
//! live register value of the interrupted thread: a real fault, delivered by the kernel.

use std::sync::OnceLock;

use crate::arch::Fault;
use crate::class::ClassId;

/// Offsets of the XSAVE components 0..=18 in the user-format image (0 where absent).
static OFFSETS: OnceLock<[usize; 19]> = OnceLock::new();

pub(super) fn init_offsets(xcr0: u64) {
    OFFSETS.get_or_init(|| {
        let mut off = [0usize; 19];
        off[1] = 0;
        for (c, slot) in off.iter_mut().enumerate().skip(2) {
            if xcr0 & (1 << c) != 0 {
                *slot = super::cpuid(0xd, c as u32).1 as usize;
            }
        }
        off
    });
}

/// (XSAVE component, byte offset in the image, width in bytes) of a lane.
fn location(f: &Fault, off: &[usize; 19]) -> Option<(usize, usize, usize)> {
    let (r, l) = (f.reg, f.lane);
    let legacy_xmm = |r: usize, l: usize| (1, 160 + 16 * r + 8 * l, 8);
    let need = |c: usize, v: (usize, usize, usize)| (off[c] != 0).then_some(v);
    match f.class {
        ClassId::X87 if r < 8 => Some((0, 32 + 16 * r + 8 * l, if l == 0 { 8 } else { 2 })),
        ClassId::X87 => Some((0, 0, 2)),
        ClassId::Mxcsr => Some((1, 24, 4)),
        ClassId::Sse => Some(legacy_xmm(r, l)),
        ClassId::Avx if l < 2 => Some(legacy_xmm(r, l)),
        ClassId::Avx => need(2, (2, off[2] + 16 * r + 8 * (l - 2), 8)),
        ClassId::Avx512 if r < 16 && l < 2 => Some(legacy_xmm(r, l)),
        ClassId::Avx512 if r < 16 && l < 4 => need(2, (2, off[2] + 16 * r + 8 * (l - 2), 8)),
        ClassId::Avx512 if r < 16 => need(6, (6, off[6] + 32 * r + 8 * (l - 4), 8)),
        ClassId::Avx512 => need(7, (7, off[7] + 64 * (r - 16) + 8 * l, 8)),
        ClassId::Opmask => need(5, (5, off[5] + 8 * r, 8)),
        ClassId::Amx if r < 8 => need(18, (18, off[18] + 1024 * r + 8 * l, 8)),
        _ => None,
    }
}

/// The interrupted instruction address of a signal frame.
///
/// # Safety
/// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
pub(crate) unsafe fn frame_pc(uc: *mut libc::c_void) -> usize {
    // SAFETY: the caller passes the kernel's ucontext_t.
    unsafe { (*(uc as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] as usize }
}

/// XOR `f.mask` into the saved image of one lane; false when the frame has no such image.
///
/// # Safety
/// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
pub(crate) unsafe fn inject(uc: *mut libc::c_void, f: &Fault) -> bool {
    let Some(off) = OFFSETS.get() else { return false };
    let Some((component, at, width)) = location(f, off) else { return false };
    // SAFETY: the caller passes the live frame's ucontext_t; fpregs points into the same frame.
    let fp = unsafe { (*(uc as *const libc::ucontext_t)).uc_mcontext.fpregs } as *mut u8;
    if fp.is_null() {
        return false;
    }
    // The software-reserved bytes of the legacy area say how much XSAVE image follows
    // (struct _fpx_sw_bytes at 464: magic1, extended_size, xfeatures, xstate_size).
    // SAFETY: the legacy area (512 bytes) is always present and 16-byte aligned.
    let (magic, xfeatures, xstate_size) = unsafe {
        (
            (fp.add(464) as *const u32).read(),
            (fp.add(472) as *const u64).read(),
            (fp.add(480) as *const u32).read() as usize,
        )
    };
    const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
    let extended = component >= 2;
    if extended && (magic != FP_XSTATE_MAGIC1 || xfeatures & (1 << component) == 0 || at + width > xstate_size) {
        return false;
    }
    // SAFETY: `at + width` lies inside the image the kernel wrote (checked above for extended
    // components; the legacy area is 512 bytes). Unaligned accesses, since widths vary.
    unsafe {
        let p = fp.add(at);
        match width {
            8 => (p as *mut u64).write_unaligned((p as *const u64).read_unaligned() ^ f.mask),
            4 => (p as *mut u32).write_unaligned((p as *const u32).read_unaligned() ^ f.mask as u32),
            _ => (p as *mut u16).write_unaligned((p as *const u16).read_unaligned() ^ f.mask as u16),
        }
        if magic == FP_XSTATE_MAGIC1 {
            // XSTATE_BV: a component whose bit is clear would be loaded as its init state.
            let bv = fp.add(512) as *mut u64;
            bv.write(bv.read() | 1 << component);
        }
    }
    true
}

/// No known bug of this architecture is replayed into signal frames (see powerpc64).
///
/// # Safety
/// Nothing is touched; unsafe only to match the other backends.
pub(crate) unsafe fn replay_known_bug(_uc: *mut libc::c_void, _class: ClassId) -> bool {
    false
}
