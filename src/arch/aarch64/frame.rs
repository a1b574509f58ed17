//! Where each register lies in an aarch64 signal frame, and how to change it there.
//!
//! `uc_mcontext.__reserved` holds a list of records (arch/arm64/include/uapi/asm/sigcontext.h),
//! each `{magic, size}`: `fpsimd_context` (FPSR at +8, FPCR at +12, v0-v31 from +16) and, when
//! the thread's SVE state is live, `sve_context` (vl at +8; z0-z31 from +16, VL bytes each; then
//! p0-p15 and FFR, VL/8 bytes each). A record may continue in an `extra_context`. sigreturn
//! loads the registers from these records, so a value changed here is a real fault. The integer
//! registers and NZCV are outside the records: `uc_mcontext.regs[n]` and `uc_mcontext.pstate`
//! (bits 28-31), which sigreturn loads back too.
//!
//! SME (Documentation/arch/arm64/sme.rst, section 5): in streaming mode the `sve_context` holds
//! the streaming registers at the SVL and has `SVE_SIG_FLAG_SM` (bit 0 of its flags at +10);
//! `za_context` (vl at +8) holds the ZA rows from +16 when PSTATE.ZA was on; `tpidr2_context`,
//! `zt_context` (ZT0 from +16) and `fpmr_context` hold their register at +8 (+16 for ZT0).

use crate::class::ClassId;
use crate::injection::Fault;
use crate::schema::FaultReading;

const FPSIMD_MAGIC: u32 = 0x4650_8001;
const SVE_MAGIC: u32 = 0x5356_4501;
const EXTRA_MAGIC: u32 = 0x4558_5401;
const ZA_MAGIC: u32 = 0x5436_6345;
const TPIDR2_MAGIC: u32 = 0x5450_4902;
const ZT_MAGIC: u32 = 0x5a54_4e01;
const FPMR_MAGIC: u32 = 0x4650_4d52;

/// The records of a frame that hold registers, by address.
#[derive(Default)]
struct Records {
    fp: Option<*mut u8>,
    sve: Option<*mut u8>,
    za: Option<*mut u8>,
    tpidr2: Option<*mut u8>,
    zt: Option<*mut u8>,
    fpmr: Option<*mut u8>,
}

/// The records of the frame.
unsafe fn records(uc: *mut libc::c_void) -> Records {
    // SAFETY: __reserved follows pstate, 16-byte aligned, inside the frame the caller owns.
    let mut p = unsafe {
        let after = (&raw mut (*(uc as *mut libc::ucontext_t)).uc_mcontext.pstate).add(1) as usize;
        (after.next_multiple_of(16)) as *mut u8
    };
    let mut r = Records::default();
    for _ in 0..64 {
        // SAFETY: every record starts with {magic: u32, size: u32}; the list ends with magic 0.
        let (magic, size) = unsafe { ((p as *const u32).read(), (p.add(4) as *const u32).read() as usize) };
        match magic {
            0 => break,
            FPSIMD_MAGIC => r.fp = Some(p),
            SVE_MAGIC => r.sve = Some(p),
            ZA_MAGIC => r.za = Some(p),
            TPIDR2_MAGIC => r.tpidr2 = Some(p),
            ZT_MAGIC => r.zt = Some(p),
            FPMR_MAGIC => r.fpmr = Some(p),
            EXTRA_MAGIC => {
                // struct extra_context { head; u64 datap; u32 size; ... }: continue there.
                // SAFETY: the kernel wrote a valid pointer to the rest of the records.
                p = unsafe { (p.add(8) as *const u64).read() } as *mut u8;
                continue;
            }
            _ => {}
        }
        if size == 0 {
            break;
        }
        // SAFETY: records are laid end to end.
        p = unsafe { p.add(size) };
    }
    r
}

// ----------------------------------------------------------------------------- fault forensics

/// The registers a fault record keeps, in `uc_mcontext` order.
const FAULT_REGS: &[&str] = &[
    "x0",
    "x1",
    "x2",
    "x3",
    "x4",
    "x5",
    "x6",
    "x7",
    "x8",
    "x9",
    "x10",
    "x11",
    "x12",
    "x13",
    "x14",
    "x15",
    "x16",
    "x17",
    "x18",
    "x19",
    "x20",
    "x21",
    "x22",
    "x23",
    "x24",
    "x25",
    "x26",
    "x27",
    "x28",
    "x29",
    "x30",
    "sp",
    "pc",
    "pstate",
    "fault_address",
];
/// Index of the PC in [`FAULT_REGS`].
const FAULT_PC: usize = 32;

impl crate::arch::Frames for super::Native {
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
    unsafe fn frame_pc(&self, uc: *mut libc::c_void) -> usize {
        // SAFETY: the caller passes the kernel's ucontext_t.
        unsafe { (*(uc as *const libc::ucontext_t)).uc_mcontext.pc as usize }
    }

    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
    unsafe fn inject(&self, uc: *mut libc::c_void, f: &Fault) -> bool {
        if f.class == ClassId::Gpr {
            /// The NZCV bits of PSTATE; sigreturn refuses a frame whose other PSTATE bits are not
            /// those of user mode, so nothing else may change.
            const NZCV: u64 = 0xf000_0000;
            // SAFETY: the caller passes the live frame; regs and pstate are plain fields of it.
            let m = unsafe { &mut (*(uc as *mut libc::ucontext_t)).uc_mcontext };
            // The gpr layout's order (see GPRS in mod.rs): x0-x15, x18, x19-x29, then NZCV.
            match f.reg {
                0..=15 => m.regs[f.reg] ^= f.mask,
                16..=27 => m.regs[f.reg + 2] ^= f.mask,
                28 if f.mask & !NZCV == 0 => m.pstate ^= f.mask,
                _ => return false,
            }
            return true;
        }
        // SAFETY: see records().
        let recs = unsafe { records(uc) };
        let fp = recs.fp;
        // SAFETY: an sve_context of more than its 16-byte header holds the registers; its flags
        // (+10) say whether they are the streaming ones.
        let sve_any = recs.sve.and_then(|s| unsafe {
            let size = (s.add(4) as *const u32).read() as usize;
            let vl = (s.add(8) as *const u16).read() as usize;
            let streaming = (s.add(10) as *const u16).read() & 1 != 0;
            (size > 16).then_some((s, vl, streaming))
        });
        let sve = sve_any.and_then(|(s, vl, sm)| (!sm).then_some((s, vl)));
        let ssve = sve_any.and_then(|(s, vl, sm)| sm.then_some((s, vl)));
        let xor = |p: *mut u8, width: usize, mask: u64| {
            // SAFETY: callers pass addresses inside a record of the live frame.
            unsafe {
                match width {
                    8 => (p as *mut u64).write_unaligned((p as *const u64).read_unaligned() ^ mask),
                    4 => (p as *mut u32).write_unaligned((p as *const u32).read_unaligned() ^ mask as u32),
                    2 => (p as *mut u16).write_unaligned((p as *const u16).read_unaligned() ^ mask as u16),
                    _ => {}
                }
            }
        };
        let (r, l) = (f.reg, f.lane);
        match f.class {
            ClassId::Neon => {
                let Some(fp) = fp else { return false };
                // SAFETY: offsets inside fpsimd_context (528 bytes) and sve_context (its size).
                unsafe {
                    match r {
                        32 => xor(fp.add(8), 4, f.mask),
                        33 => xor(fp.add(12), 4, f.mask),
                        _ => {
                            xor(fp.add(16 + 16 * r + 8 * l), 8, f.mask);
                            if let Some((s, vl)) = sve {
                                xor(s.add(16 + vl * r + 8 * l), 8, f.mask);
                            }
                        }
                    }
                }
                true
            }
            ClassId::Sve | ClassId::Ssve | ClassId::SveZa => {
                let Some((s, vl)) = (if f.class == ClassId::Ssve { ssve } else { sve }) else { return false };
                let pl = vl / 8;
                // SAFETY: offsets inside sve_context, whose size covers z, p and FFR at this VL.
                unsafe {
                    if r < 32 {
                        xor(s.add(16 + vl * r + 8 * l), 8, f.mask);
                        // Bits 127:0 of every z, streaming or not, are restored from
                        // fpsimd_context, not sve_context (sve.rst section 5, "Signal return").
                        if let (Some(fp), true) = (fp, l < 2) {
                            xor(fp.add(16 + 16 * r + 8 * l), 8, f.mask);
                        }
                    } else if r < 48 {
                        let width = (pl - 8 * l).min(8);
                        xor(s.add(16 + 32 * vl + pl * (r - 32) + 8 * l), width, f.mask);
                    } else {
                        return false;
                    }
                }
                true
            }
            ClassId::NeonSve => {
                use super::NeonSvePart as P;
                let Some(part) = super::neon_sve_part(r, super::layout_vl()) else { return false };
                // SAFETY: offsets inside fpsimd_context (528 bytes) and sve_context (its size,
                // which covers z, p and FFR at the frame's vector length).
                unsafe {
                    match (part, fp, sve) {
                        (P::Fpsr, Some(fp), _) => xor(fp.add(8), 4, f.mask),
                        (P::Fpcr, Some(fp), _) => xor(fp.add(12), 4, f.mask),
                        (P::V(i), _, _) if l < 2 => {
                            let mut any = false;
                            if let Some(fp) = fp {
                                xor(fp.add(16 + 16 * i + 8 * l), 8, f.mask);
                                any = true;
                            }
                            if let Some((s, vl)) = sve {
                                xor(s.add(16 + vl * i + 8 * l), 8, f.mask);
                                any = true;
                            }
                            return any;
                        }
                        // The SVE-only state: in the frame only while the thread's SVE state is
                        // live (an sve_context with registers).
                        (P::ZHi(i), _, Some((s, vl))) if 16 + 8 * l < vl => xor(s.add(16 + vl * i + 16 + 8 * l), 8, f.mask),
                        (P::P(i), _, Some((s, vl))) => {
                            let pl = vl / 8;
                            let width = pl.saturating_sub(8 * l).min(8);
                            if width == 0 {
                                return false;
                            }
                            xor(s.add(16 + 32 * vl + pl * i + 8 * l), width, f.mask);
                        }
                        _ => return false,
                    }
                }
                true
            }
            // ZA: the rows from +16, SVL bytes each, when the record holds them (PSTATE.ZA on).
            // (sve-ssve's faults are planted in its ZA rows only: pick_fault.)
            ClassId::Za | ClassId::ZaSm | ClassId::SveSsve => {
                // SAFETY: a za_context longer than its header holds vl rows of vl bytes.
                let Some((z, vl)) = recs.za.and_then(|z| unsafe {
                    let size = (z.add(4) as *const u32).read() as usize;
                    let vl = (z.add(8) as *const u16).read() as usize;
                    (size >= 16 + vl * vl).then_some((z, vl))
                }) else {
                    return false;
                };
                if r >= vl || 8 * l >= vl {
                    return false;
                }
                // SAFETY: row r < vl, lane l < vl / 8: inside the record.
                unsafe { xor(z.add(16 + vl * r + 8 * l), 8, f.mask) };
                true
            }
            ClassId::Tpidr2 | ClassId::Fpmr | ClassId::Zt0 => {
                let (rec, at) = match f.class {
                    ClassId::Tpidr2 => (recs.tpidr2, 8),
                    ClassId::Fpmr => (recs.fpmr, 8),
                    _ => (recs.zt, 16),
                };
                let Some(p) = rec else { return false };
                // SAFETY: tpidr2_context and fpmr_context hold one u64 at +8; zt_context the
                // 64 bytes of ZT0 at +16 (lane l < 8).
                unsafe { xor(p.add(at + 8 * l), 8, f.mask) };
                true
            }
            _ => false,
        }
    }

    /// The positive control of fault forensics: sigreturn resumes at the PSTATE image (a user
    /// PSTATE, such as 0x20001000, is no executable address of this static binary: the fetch
    /// faults).
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
    unsafe fn misreturn(&self, uc: *mut libc::c_void) -> bool {
        // SAFETY: the caller passes the live frame.
        let m = unsafe { &mut (*(uc as *mut libc::ucontext_t)).uc_mcontext };
        m.pc = m.pstate;
        true
    }

    /// Copy the frame's registers into `out`; returns how many.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
    unsafe fn fault_regs(&self, uc: *mut libc::c_void, out: &mut [u64]) -> usize {
        // SAFETY: the caller passes the kernel's ucontext_t.
        let m = unsafe { &(*(uc as *const libc::ucontext_t)).uc_mcontext };
        let all = m.regs.iter().copied().chain([m.sp, m.pc, m.pstate, m.fault_address]);
        let mut n = 0;
        for (o, v) in out.iter_mut().zip(all) {
            *o = v;
            n += 1;
        }
        n
    }

    /// What the registers of a fault say.
    fn fault_readings(&self, regs: &[u64], _sym: &dyn Fn(&str) -> Option<u64>) -> Vec<FaultReading> {
        let r = |i: usize| regs.get(i).copied().unwrap_or(0);
        let mut out = Vec::new();
        if r(FAULT_PC) == r(33) && r(FAULT_PC) != 0 {
            out.push(FaultReading::PcIsStateImage);
        }
        out
    }

    /// The vDSO's sigreturn trampoline (arch/arm64/kernel/vdso/sigreturn.S); the kernel calls the
    /// handler directly, with x30 pointing there, so there is no trampoline start.
    fn signal_trampoline(&self, img: &[u8], base: usize) -> (usize, usize) {
        let syms = crate::elf::elf_symbols(img, base);
        (0, syms.iter().find(|s| s.name == "__kernel_rt_sigreturn").map_or(0, |s| s.addr))
    }

    fn fault_layout(&self) -> (&'static [&'static str], usize) {
        (FAULT_REGS, FAULT_PC)
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;

    #[test]
    fn a_jump_to_the_pstate_image_is_read_from_a_synthetic_frame() {
        // SAFETY: ucontext_t is plain data.
        let mut uc: libc::ucontext_t = unsafe { std::mem::zeroed() };
        uc.uc_mcontext.pstate = 0x8000_0000;
        uc.uc_mcontext.pc = 0x8000_0000;
        let mut regs = [0u64; 48];
        // SAFETY: a ucontext_t of our own.
        let n = unsafe { crate::arch::native().fault_regs(&mut uc as *mut _ as *mut libc::c_void, &mut regs) };
        assert_eq!(n, FAULT_REGS.len());
        assert_eq!(crate::arch::native().fault_readings(&regs[..n], &|_| None), vec![FaultReading::PcIsStateImage]);
    }
}
