//! The architecture seam: everything that touches registers, signal frames or raw system calls.
//!
//! Every `unsafe` block and every assembly file of regtorture lives below this module; the rest
//! of the crate is `#![deny(unsafe_code)]`. One backend is compiled, chosen by `target_arch`
//! (in the style of rustix), and it exposes the same small set of functions on every
//! architecture:
//!
//! * [`detect`] — the register classes of this architecture, each with its buffer layout and
//!   whether this CPU and kernel provide it (and if not, why);
//! * [`run_window`] — fill one class from a buffer, run a window, store it back;
//! * [`clobber`] — load a class with other values (used by the signal handler);
//! * `live_range`, `frame_pc`, `inject` — the fault injector's view of a signal frame.
//!
//! [`linux`] holds the operating-system calls every backend shares.

/// `(begin, end)` code addresses of the live window of `$class`, from the pairs of assembly
/// labels that bound it in each backend's regs.S; `(0, 0)` for a class the backend lacks.
macro_rules! live_ranges {
    ($class:expr, $($id:path => ($b:ident, $e:ident)),* $(,)?) => {{
        // SAFETY: only the addresses of the labels are taken; nothing is read through them.
        #[allow(unused_unsafe)]
        unsafe {
            match $class {
                $($id => ((&raw const $b) as usize, (&raw const $e) as usize),)*
                _ => (0, 0),
            }
        }
    }};
}

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/mod.rs"]
mod imp;

#[cfg(target_arch = "aarch64")]
#[path = "aarch64/mod.rs"]
mod imp;

#[cfg(target_arch = "powerpc64")]
#[path = "powerpc64/mod.rs"]
mod imp;

pub mod iowq;
pub mod linux;

pub use imp::{ARCH, detect, fuses_iteration, has_scv, preserved, run_window, set_vector_length};
pub(crate) use imp::{clobber, frame_pc, inject, live_range, misreturn, recover, replay_known_bug};
pub(crate) use imp::{NEEDS_TRAMPOLINE_START, fault_regs, signal_trampoline};
pub(crate) use imp::{FAULT_PC, FAULT_REGS, fault_readings, syscall_trap_name};

/// Whether the interrupted context of a signal frame is the return from a system call issued
/// by one of the windows (the instruction before the PC is one of the backend's
/// `SYSCALL_INSNS`): the signal was delivered on that syscall's exit.
///
/// # Safety
/// `uc` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
pub(crate) unsafe fn at_syscall_exit(uc: *mut libc::c_void) -> bool {
    // SAFETY: the caller passes the kernel's ucontext_t.
    let pc = unsafe { frame_pc(uc) };
    imp::SYSCALL_INSNS.iter().any(|insn| {
        let inside = crate::class::ClassId::ALL.iter().any(|&c| {
            let (b, e) = live_range(c);
            b + insn.len() <= pc && pc < e
        });
        // SAFETY: the PC lies inside one of the window routines (checked), so the bytes before
        // it are code of the same routine.
        inside && unsafe { std::slice::from_raw_parts((pc - insn.len()) as *const u8, insn.len()) } == *insn
    })
}

/// Whether this architecture has a known bug whose effect `replay_known_bug` can reproduce.
pub const REPLAYS_KNOWN_BUG: bool = cfg!(target_arch = "powerpc64");

/// Which classes `detect` found usable: a class's assembly runs only then (an instruction the
/// CPU or kernel has not enabled would raise SIGILL). One per backend.
pub(crate) struct Enabled(std::sync::atomic::AtomicU32);

impl Enabled {
    pub(crate) const fn new() -> Enabled {
        Enabled(std::sync::atomic::AtomicU32::new(0))
    }

    /// Remember which of `descs` are available.
    pub(crate) fn record(&self, descs: &[crate::class::ClassDesc]) {
        let mask = descs.iter().filter(|d| d.available.is_ok()).fold(0, |m, d| m | 1 << d.id().code());
        self.0.store(mask, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn has(&self, class: crate::class::ClassId) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire) & (1 << class.code()) != 0
    }

    /// Panics unless `class` is usable and every buffer length in `lens` is at least `words`.
    pub(crate) fn check(&self, class: crate::class::ClassId, words: usize, lens: &[usize]) {
        assert!(self.has(class), "class {class} is not available here");
        assert!(lens.iter().all(|&n| n >= words), "buffer too short for class {class}");
    }
}
