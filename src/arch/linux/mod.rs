//! Linux calls every backend shares: thread ids, signals and their handlers, the fault
//! injector's hand-off, fresh pages for page-fault windows, reaping fork children.
//!
//! Safe wrappers over `libc`; each `unsafe` block says why it is sound. The signal handlers
//! only touch atomics, pre-built buffers and the frame they were given.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::class::ClassId;
use crate::injection::Fault;
use crate::window::{FLAG_CHILD_EXIT, FLAG_SCV, FLAG_TOUCH, WindowOp};

mod window;
pub use window::*;
mod signals;
pub use signals::*;
mod triggers;
pub use triggers::*;
mod vm;
pub use vm::*;
mod faults;
pub use faults::*;
mod slots;
pub use slots::*;
mod exec;
pub use exec::*;
mod ptrace;
pub use ptrace::*;
mod rewrite;
pub use rewrite::*;

/// `Ok` for a call that returns 0 on success, else the error it left in errno (as rustix's
/// `zero_ok`): system calls and libc functions that return 0 or -1.
fn zero_ok<T: Into<i64>>(r: T) -> io::Result<()> {
    if r.into() == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// A call's non-negative result, or the error it left in errno (as rustix's `negone_err`).
fn nonneg<T: Into<i64>>(r: T) -> io::Result<i64> {
    let r = r.into();
    if r >= 0 { Ok(r) } else { Err(io::Error::last_os_error()) }
}

/// This thread's kernel id.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// This process's id.
pub fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// The CPU this thread runs on now.
pub fn current_cpu() -> i32 {
    // SAFETY: sched_getcpu has no preconditions.
    unsafe { libc::sched_getcpu() }
}

/// Send `sig` to thread `tid` of this process.
pub fn tgkill(tid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: tgkill takes plain integers.
    zero_ok(unsafe { libc::syscall(libc::SYS_tgkill, getpid(), tid, sig) })
}

/// The release of the running kernel (`uname -r`).
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// Whether this binary runs under user-mode emulation (qemu-user): the kernel's /proc/cpuinfo
/// then describes a CPU of another architecture than the one this binary was built for.
/// Signals and signal frames are then QEMU's, not the kernel's.
pub fn user_mode_emulation() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else { return false };
    !crate::arch::native().cpuinfo_is_native(&info)
}

/// The signal the `signal` window and the signal triggers send: its handler clobbers registers.
pub fn sig_clobber() -> i32 {
    libc::SIGRTMIN() + 2
}

/// The signal the fault injector sends: its handler rewrites the signal frame.
pub fn sig_inject() -> i32 {
    libc::SIGRTMIN() + 3
}

/// The signal the tgkill trigger sends (clobbering handler).
pub fn sig_tgkill() -> i32 {
    libc::SIGRTMIN() + 4
}

/// The signal per-thread POSIX timers deliver (clobbering handler).
pub fn sig_timer() -> i32 {
    libc::SIGRTMIN() + 5
}

/// How many times the clobbering handler ran for `sig`.
pub fn handled(sig: i32) -> u64 {
    SIG_COUNTS[((sig - libc::SIGRTMIN()) & 7) as usize].load(Ordering::Relaxed)
}
