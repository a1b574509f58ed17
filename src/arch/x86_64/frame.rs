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

use crate::class::ClassId;
use crate::injection::Fault;
use crate::schema::FaultReading;

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
    site(f.class, f.reg, f.lane, off)
}

/// `NT_X86_XSTATE` (elf.h): ptrace's XSAVE image, in the same user format as a signal frame's
/// (`copy_xstate_to_uabi_buf`).
const NT_X86_XSTATE: u32 = 0x202;

/// The ptrace register sets that show `layout`'s lanes: `NT_PRFPREG` (the 512-byte FXSAVE
/// area: x87, MXCSR and xmm0-15, `xfpregs_get`) and `NT_X86_XSTATE` (every component), at the
/// offsets a signal frame's image has them; the gpr class's `NT_PRSTATUS` is the default one.
pub(super) fn regsets(layout: &crate::class::ClassLayout) -> Vec<crate::arch::RegsetMap> {
    use crate::class::RegKind;
    let Some(off) = OFFSETS.get() else { return Vec::new() };
    let lanes = layout.regs.iter().enumerate().flat_map(|(r, spec)| {
        let n = match spec.kind {
            RegKind::Data => spec.bytes / 8,
            RegKind::X87 => 2,
            // PKRU, which ptrace and cores show and a tracer may write (rr's bug: 5.14-6.2).
            RegKind::Control { .. } if layout.id == ClassId::Pkru => 1,
            _ => 0,
        };
        (0..n).map(move |l| (r, l, spec.offset / 8 + l))
    });
    let sites: Vec<(usize, (usize, usize, usize))> = lanes.filter_map(|(r, l, w)| site(layout.id, r, l, off).map(|s| (w, s))).collect();
    let legacy = sites.iter().filter(|(_, (c, _, _))| *c <= 1).map(|&(w, (_, at, width))| (w, at, width)).collect();
    let all = sites.iter().map(|&(w, (_, at, width))| (w, at, width)).collect();
    [crate::arch::RegsetMap::new(crate::arch::NT_PRFPREG, "NT_PRFPREG", legacy), crate::arch::RegsetMap::new(NT_X86_XSTATE, "NT_X86_XSTATE", all)]
        .into_iter()
        .filter(|m| !m.words.is_empty())
        .collect()
}

/// (XSAVE component, byte offset in the image, width in bytes) of lane `l` of register `r` of
/// `class`.
fn site(class: ClassId, r: usize, l: usize, off: &[usize; 19]) -> Option<(usize, usize, usize)> {
    let legacy_xmm = |r: usize, l: usize| (1, 160 + 16 * r + 8 * l, 8);
    let need = |c: usize, v: (usize, usize, usize)| (off[c] != 0).then_some(v);
    match class {
        ClassId::X87 if r < 8 => Some((0, 32 + 16 * r + 8 * l, if l == 0 { 8 } else { 2 })),
        ClassId::X87 => Some((0, 0, 2)),
        ClassId::Mxcsr => Some((1, 24, 4)),
        ClassId::Sse => Some(legacy_xmm(r, l)),
        ClassId::Avx if l < 2 => Some(legacy_xmm(r, l)),
        ClassId::Avx => need(2, (2, off[2] + 16 * r + 8 * (l - 2), 8)),
        // avx-upper: xmm0-15, then the upper halves ymm0.hi-ymm15.hi (YMM_Hi128).
        ClassId::AvxUpper if r < 16 => Some(legacy_xmm(r, l)),
        ClassId::AvxUpper if r < 32 => need(2, (2, off[2] + 16 * (r - 16) + 8 * l, 8)),
        ClassId::Avx512 if r < 16 && l < 2 => Some(legacy_xmm(r, l)),
        ClassId::Avx512 if r < 16 && l < 4 => need(2, (2, off[2] + 16 * r + 8 * (l - 2), 8)),
        ClassId::Avx512 if r < 16 => need(6, (6, off[6] + 32 * r + 8 * (l - 4), 8)),
        ClassId::Avx512 => need(7, (7, off[7] + 64 * (r - 16) + 8 * l, 8)),
        ClassId::Opmask => need(5, (5, off[5] + 8 * r, 8)),
        ClassId::Amx if r < 8 => need(18, (18, off[18] + 1024 * r + 8 * l, 8)),
        ClassId::Pkru if r == 0 && l == 0 => need(9, (9, off[9], 4)),
        _ => None,
    }
}

// ----------------------------------------------------------------------------- fault forensics

/// The registers a fault record keeps: `uc_mcontext.gregs`, in glibc's REG_* order.
const FAULT_REGS: &[&str] = &[
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx", "rdx", "rax", "rcx", "rsp", "rip", "eflags", "csgsfs", "err", "trapno",
    "oldmask", "cr2",
];
/// Index of the PC in [`FAULT_REGS`].
const FAULT_PC: usize = libc::REG_RIP as usize;

impl crate::arch::Frames for super::Native {
    /// The interrupted instruction address of a signal frame.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
    unsafe fn frame_pc(&self, uc: *mut libc::c_void) -> usize {
        // SAFETY: the caller passes the kernel's ucontext_t.
        unsafe { (*(uc as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] as usize }
    }

    /// XOR `f.mask` into the saved image of one lane; false when the frame has no such image.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
    unsafe fn inject(&self, uc: *mut libc::c_void, f: &Fault) -> bool {
        if f.class == ClassId::Gpr {
            // The gpr layout's order (see GPRS in mod.rs), as glibc's REG_* indexes of gregs.
            const AT: [libc::c_int; 15] = [
                libc::REG_RAX,
                libc::REG_RBX,
                libc::REG_RDX,
                libc::REG_RSI,
                libc::REG_RDI,
                libc::REG_RBP,
                libc::REG_R8,
                libc::REG_R9,
                libc::REG_R10,
                libc::REG_R11,
                libc::REG_R12,
                libc::REG_R13,
                libc::REG_R14,
                libc::REG_R15,
                libc::REG_EFL,
            ];
            let Some(&at) = AT.get(f.reg) else { return false };
            // SAFETY: the caller passes the live frame; gregs holds every general register.
            let g = unsafe { &mut (*(uc as *mut libc::ucontext_t)).uc_mcontext.gregs };
            g[at as usize] ^= f.mask as i64;
            return true;
        }
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
        let (magic, xfeatures, xstate_size) =
            unsafe { ((fp.add(464) as *const u32).read(), (fp.add(472) as *const u64).read(), (fp.add(480) as *const u32).read() as usize) };
        const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
        let extended = component >= 2;
        if extended && (magic != FP_XSTATE_MAGIC1 || xfeatures & (1 << component) == 0 || at + width > xstate_size) {
            return false;
        }
        // A component in its initial configuration (its XSTATE_BV bit clear) is loaded as zeros
        // whatever its save area holds: make the area those zeros before the fault goes in and
        // the bit is set, so that only the faulted lane changes.
        if extended && magic == FP_XSTATE_MAGIC1 {
            // SAFETY: the XSAVE header follows the legacy area; the component's area
            // (CPUID.(0xD, c).EAX bytes at its offset) lies inside the image (checked).
            unsafe {
                let bv = (fp.add(512) as *const u64).read();
                let (start, size) = (off[component], super::cpuid(0xd, component as u32).0 as usize);
                if bv & (1 << component) == 0 && start + size <= xstate_size {
                    std::ptr::write_bytes(fp.add(start), 0, size);
                }
            }
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

    /// The positive control of fault forensics: sigreturn resumes at the RFLAGS image.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
    unsafe fn misreturn(&self, uc: *mut libc::c_void) -> bool {
        // SAFETY: the caller passes the live frame.
        let g = unsafe { &mut (*(uc as *mut libc::ucontext_t)).uc_mcontext.gregs };
        g[libc::REG_RIP as usize] = g[libc::REG_EFL as usize];
        true
    }

    /// Copy the frame's registers into `out`; returns how many.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
    unsafe fn fault_regs(&self, uc: *mut libc::c_void, out: &mut [u64]) -> usize {
        // SAFETY: the caller passes the kernel's ucontext_t.
        let g = unsafe { &(*(uc as *const libc::ucontext_t)).uc_mcontext.gregs };
        let n = g.len().min(out.len());
        for (o, v) in out.iter_mut().zip(g.iter()) {
            *o = *v as u64;
        }
        n
    }

    /// What the registers of a fault say.
    fn fault_readings(&self, regs: &[u64], _sym: &dyn Fn(&str) -> Option<u64>) -> Vec<FaultReading> {
        let r = |i: usize| regs.get(i).copied().unwrap_or(0);
        let mut out = Vec::new();
        // The fault's own frame may add RF (bit 16, resume flag) to the flags.
        if (r(FAULT_PC) ^ r(libc::REG_EFL as usize)) & !0x1_0000 == 0 && r(FAULT_PC) != 0 {
            out.push(FaultReading::PcIsStateImage);
        }
        out
    }

    fn fault_layout(&self) -> (&'static [&'static str], usize) {
        (FAULT_REGS, FAULT_PC)
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;

    #[test]
    fn a_jump_to_the_flags_image_is_read_from_a_synthetic_frame() {
        // SAFETY: ucontext_t is plain data.
        let mut uc: libc::ucontext_t = unsafe { std::mem::zeroed() };
        uc.uc_mcontext.gregs[libc::REG_EFL as usize] = 0x246;
        uc.uc_mcontext.gregs[libc::REG_RIP as usize] = 0x246;
        let mut regs = [0u64; 48];
        // SAFETY: a ucontext_t of our own.
        let n = unsafe { crate::arch::native().fault_regs(&mut uc as *mut _ as *mut libc::c_void, &mut regs) };
        assert_eq!(n, FAULT_REGS.len());
        assert_eq!(FAULT_REGS[FAULT_PC], "rip");
        assert_eq!(crate::arch::native().fault_readings(&regs[..n], &|_| None), vec![FaultReading::PcIsStateImage]);
        uc.uc_mcontext.gregs[libc::REG_RIP as usize] = 0x401000;
        // SAFETY: as above.
        let n = unsafe { crate::arch::native().fault_regs(&mut uc as *mut _ as *mut libc::c_void, &mut regs) };
        assert!(crate::arch::native().fault_readings(&regs[..n], &|_| None).is_empty());
    }
}
