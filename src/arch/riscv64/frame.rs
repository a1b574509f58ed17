//! Where each register lies in a riscv64 signal frame, and how to change it there.
//!
//! `uc_mcontext` is the kernel's `struct sigcontext` (arch/riscv/include/uapi/asm/sigcontext.h):
//! `sc_regs` (pc, then x1-x31), then the union of `sc_fpregs` (the D state: f0-f31, fcsr at
//! +256) and `sc_extdesc`, whose `hdr` at +520 starts a list of extension records, each a
//! `struct __riscv_ctx_hdr {magic, size}` with `size` counting the header, ended by
//! `END_MAGIC` (0) with size 0 (arch/riscv/kernel/signal.c). The vector record (RISCV_V_MAGIC)
//! holds a `struct __riscv_v_ext_state` (vstart, vl, vtype, vcsr, vlenb, datap;
//! arch/riscv/include/uapi/asm/ptrace.h) right after its header, and `datap` points at v0-v31,
//! VLENB bytes each, which the kernel writes just after the struct. sigreturn loads every one
//! of these (restore_sigcontext, __restore_v_state), so a value changed here is a real fault.

use std::sync::atomic::Ordering;

use crate::class::ClassId;
use crate::injection::Fault;
use crate::schema::FaultReading;

/// arch/riscv/include/uapi/asm/sigcontext.h.
const RISCV_V_MAGIC: u32 = 0x5346_5457;
const END_MAGIC: u32 = 0;
/// Where `sc_extdesc.hdr` lies in the FP union: after `__padding[129]` and `reserved`.
const EXT_HDR: usize = 129 * 4 + 4;
/// sizeof(struct __riscv_ctx_hdr) and of the __sc_riscv_v_state that follows it (six longs,
/// 16-byte aligned).
const HDR: usize = 8;
const V_STATE: usize = 48;

/// The `uc_mcontext` of the frame, as bytes.
unsafe fn mcontext(uc: *mut libc::c_void) -> *mut u8 {
    // SAFETY: the caller passes the kernel's ucontext_t; only the field's address is taken.
    unsafe { (&raw mut (*(uc as *mut libc::ucontext_t)).uc_mcontext) as *mut u8 }
}

/// The vector record's `__riscv_v_ext_state` of the frame, when the kernel wrote one whose
/// layout is the one the V class was made for (VLENB), with its register data where the
/// kernel puts it; `None` otherwise (no V state: the thread never used V, or an older kernel).
///
/// # Safety
/// `uc` must be the `ucontext_t` of a kernel-built signal frame that is live now.
unsafe fn vector_state(uc: *mut libc::c_void, vlenb: usize) -> Option<*mut u8> {
    if vlenb == 0 || super::EMULATED.load(Ordering::Acquire) {
        // QEMU's frames end after fcsr: there is no list to walk.
        return None;
    }
    // SAFETY: sc_fpregs follows the 32 registers of sc_regs; the header list starts inside the
    // 528-byte union, and each record lies inside the frame the kernel built (its size counts
    // its own bytes), so every read below is inside the frame while the list is well formed:
    // the walk stops at the end record, at a size too small to move on, or after 8 records.
    unsafe {
        let mut h = mcontext(uc).add(32 * 8 + EXT_HDR);
        for _ in 0..8 {
            let magic = (h as *const u32).read();
            let size = (h.add(4) as *const u32).read() as usize;
            match magic {
                END_MAGIC => return None,
                RISCV_V_MAGIC => {
                    let state = h.add(HDR);
                    let datap = (state.add(40) as *const usize).read();
                    let frame_vlenb = (state.add(32) as *const usize).read();
                    let fits = size == HDR + V_STATE + 32 * vlenb && frame_vlenb == vlenb && datap == state.add(V_STATE) as usize;
                    return fits.then_some(state);
                }
                _ if size < HDR => return None,
                _ => h = h.add(size),
            }
        }
    }
    None
}

/// XOR `mask` into the `width` bytes at `p`.
///
/// # Safety
/// `p` must point to `width` writable bytes of the live frame.
unsafe fn xor(p: *mut u8, width: usize, mask: u64) {
    // SAFETY: the caller's contract.
    unsafe {
        match width {
            8 => (p as *mut u64).write_unaligned((p as *const u64).read_unaligned() ^ mask),
            4 => (p as *mut u32).write_unaligned((p as *const u32).read_unaligned() ^ mask as u32),
            _ => {}
        }
    }
}

// ----------------------------------------------------------------------------- fault forensics

/// The registers a fault record keeps: `sc_regs` in order (pc first), then fcsr.
const FAULT_REGS: &[&str] = &[
    "pc", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
    "s10", "s11", "t3", "t4", "t5", "t6", "fcsr",
];
/// Index of the PC in [`FAULT_REGS`], and of fcsr.
const FAULT_PC: usize = 0;
const FAULT_FCSR: usize = 32;

impl crate::arch::Frames for super::Native {
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
    unsafe fn frame_pc(&self, uc: *mut libc::c_void) -> usize {
        // SAFETY: the caller passes the kernel's ucontext_t.
        unsafe { (*(uc as *const libc::ucontext_t)).uc_mcontext.__gregs[0] as usize }
    }

    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
    unsafe fn inject(&self, uc: *mut libc::c_void, f: &Fault) -> bool {
        // SAFETY: the caller passes the live frame.
        let m = unsafe { mcontext(uc) };
        match f.class {
            ClassId::Gpr => {
                // The gpr layout's order (GPRS in mod.rs): ra (x1), then x5-x30; sc_regs[n] is xn.
                let x = match f.reg {
                    0 => 1,
                    1..=26 => f.reg + 4,
                    _ => return false,
                };
                // SAFETY: sc_regs holds 32 longs at the start of uc_mcontext.
                unsafe { xor(m.add(8 * x), 8, f.mask) };
                true
            }
            ClassId::Fpr => {
                // SAFETY: sc_fpregs (the D state) follows sc_regs: f0-f31, then fcsr (32 bits).
                unsafe {
                    let fp = m.add(32 * 8);
                    match f.reg {
                        0..=31 => xor(fp.add(8 * f.reg), 8, f.mask),
                        32 => xor(fp.add(256), 4, f.mask),
                        _ => return false,
                    }
                }
                true
            }
            ClassId::Vector => {
                let vlenb = super::VLENB.load(Ordering::Acquire);
                // SAFETY: see vector_state; the caller passes the live frame.
                let Some(state) = (unsafe { vector_state(uc, vlenb) }) else { return false };
                // SAFETY: the register data (32 * VLENB bytes) follows the state struct inside
                // the record (its size was checked), and the CSRs are longs of the struct:
                // vstart +0, vl +8, vtype +16, vcsr +24.
                unsafe {
                    match f.reg {
                        0..=31 if 8 * f.lane < vlenb => xor(state.add(V_STATE + vlenb * f.reg + 8 * f.lane), 8, f.mask),
                        32 => xor(state.add(16), 8, f.mask),
                        33 => xor(state.add(8), 8, f.mask),
                        34 => xor(state, 8, f.mask),
                        35 => xor(state.add(24), 8, f.mask),
                        _ => return false,
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// The positive control of fault forensics: sigreturn resumes at the fcsr image (RISC-V
    /// keeps no status register in a user frame; fcsr, at most 0xff, is no executable address
    /// of this static binary: the fetch faults).
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler that is running now.
    unsafe fn misreturn(&self, uc: *mut libc::c_void) -> bool {
        // SAFETY: the caller passes the live frame; pc is sc_regs[0], fcsr a u32 after f31.
        unsafe {
            let m = mcontext(uc);
            let fcsr = (m.add(32 * 8 + 256) as *const u32).read();
            (m as *mut u64).write(fcsr as u64);
        }
        true
    }

    /// Copy the frame's registers into `out`; returns how many.
    ///
    /// # Safety
    /// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
    unsafe fn fault_regs(&self, uc: *mut libc::c_void, out: &mut [u64]) -> usize {
        // SAFETY: the caller passes the kernel's ucontext_t: 32 longs, then the FP state.
        let (regs, fcsr) = unsafe {
            let m = mcontext(uc);
            let regs: [u64; 32] = std::array::from_fn(|i| (m.add(8 * i) as *const u64).read());
            (regs, (m.add(32 * 8 + 256) as *const u32).read() as u64)
        };
        let mut n = 0;
        for (o, v) in out.iter_mut().zip(regs.into_iter().chain([fcsr])) {
            *o = v;
            n += 1;
        }
        n
    }

    /// What the registers of a fault say.
    fn fault_readings(&self, regs: &[u64], _sym: &dyn Fn(&str) -> Option<u64>) -> Vec<FaultReading> {
        let r = |i: usize| regs.get(i).copied().unwrap_or(0);
        let mut out = Vec::new();
        if regs.len() > FAULT_FCSR && r(FAULT_PC) == r(FAULT_FCSR) {
            out.push(FaultReading::PcIsStateImage);
        }
        out
    }

    /// The vDSO's sigreturn trampoline (arch/riscv/kernel/vdso/rt_sigreturn.S); the kernel
    /// calls the handler directly, with ra pointing there, so there is no trampoline start.
    fn signal_trampoline(&self, img: &[u8], base: usize) -> (usize, usize) {
        let syms = crate::elf::elf_symbols(img, base);
        (0, syms.iter().find(|s| s.name == "__vdso_rt_sigreturn").map_or(0, |s| s.addr))
    }

    fn fault_layout(&self) -> (&'static [&'static str], usize) {
        (FAULT_REGS, FAULT_PC)
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;

    #[test]
    fn a_jump_to_the_fcsr_image_is_read_from_a_synthetic_frame() {
        // SAFETY: ucontext_t is plain data.
        let mut uc: libc::ucontext_t = unsafe { std::mem::zeroed() };
        let p = &mut uc as *mut _ as *mut libc::c_void;
        // SAFETY: a ucontext_t of our own: fcsr and pc are inside it.
        unsafe {
            (mcontext(p).add(32 * 8 + 256) as *mut u32).write(0x41);
            assert!(crate::arch::native().misreturn(p));
        }
        assert_eq!(uc.uc_mcontext.__gregs[0], 0x41);
        let mut regs = [0u64; 48];
        // SAFETY: a ucontext_t of our own.
        let n = unsafe { crate::arch::native().fault_regs(p, &mut regs) };
        assert_eq!(n, FAULT_REGS.len());
        assert_eq!(crate::arch::native().fault_readings(&regs[..n], &|_| None), vec![FaultReading::PcIsStateImage]);
    }

    #[test]
    fn the_vector_record_is_found_by_walking_the_headers() {
        // A frame as the kernel builds it: sigcontext, then the V record at sc_extdesc.hdr,
        // its state, its registers, and the end record. Under qemu-user the walk is off
        // (EMULATED), so this test sets up what it needs itself.
        #[repr(C, align(16))]
        struct Frame {
            uc: libc::ucontext_t,
            more: [u8; 64 + 32 * 16],
        }
        // SAFETY: plain data.
        let mut f: Frame = unsafe { std::mem::zeroed() };
        let p = &mut f.uc as *mut _ as *mut libc::c_void;
        let vlenb = 16;
        let was = super::super::EMULATED.swap(false, Ordering::AcqRel);
        // SAFETY: every write below lies inside `f` (the record and the end header fit in it).
        let found = unsafe {
            let h = mcontext(p).add(32 * 8 + EXT_HDR);
            (h as *mut u32).write(RISCV_V_MAGIC);
            (h.add(4) as *mut u32).write((HDR + V_STATE + 32 * vlenb) as u32);
            let state = h.add(HDR);
            (state.add(32) as *mut usize).write(vlenb);
            (state.add(40) as *mut usize).write(state.add(V_STATE) as usize);
            let found = vector_state(p, vlenb);
            // A record whose datap points elsewhere is not written to.
            (state.add(40) as *mut usize).write(0x1000);
            let moved = vector_state(p, vlenb);
            (found == Some(state), moved.is_none(), vector_state(p, 32).is_none())
        };
        super::super::EMULATED.store(was, Ordering::Release);
        assert_eq!(found, (true, true, true));
    }
}
