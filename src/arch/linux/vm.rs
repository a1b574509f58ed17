//! Calls of a VM's init (mounts, restarting the machine) and the trace's freeze switch.

use super::*;

/// mount(2) of a pseudo filesystem at `target` (created if missing).
pub fn mount_fs(source: &str, target: &str, fstype: &str) -> io::Result<()> {
    let _ = std::fs::create_dir_all(target);
    let c = |s: &str| std::ffi::CString::new(s).map_err(|_| io::Error::other("NUL in a mount argument"));
    let (src, tgt, ty) = (c(source)?, c(target)?, c(fstype)?);
    // SAFETY: three NUL-terminated strings that outlive the call, no data argument.
    zero_ok(unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) })
}

/// Unmount the file system at `target` (tracefs that a run mounted itself).
pub fn unmount_fs(target: &str) -> io::Result<()> {
    let tgt = std::ffi::CString::new(target).map_err(|_| io::Error::other("NUL in a mount point"))?;
    // SAFETY: a NUL-terminated string that outlives the call; no flags.
    zero_ok(unsafe { libc::umount2(tgt.as_ptr(), 0) })
}

/// The open `tracing_on` file of the run's trace instance, or -1 (see `crate::trace`): the
/// first finding writes "0" to it, so the ring buffer stops and keeps the bad window.
static TRACE_FREEZE_FD: AtomicI32 = AtomicI32::new(-1);

/// Say which descriptor [`freeze_trace`] writes to (-1: none). The caller keeps it open until
/// it sets -1 again.
pub fn set_trace_freeze_fd(fd: i32) {
    if fd >= 0 {
        TRACE_FROZEN_NS.store(0, Ordering::Release);
    }
    TRACE_FREEZE_FD.store(fd, Ordering::Release);
}

/// When the trace was frozen (CLOCK_MONOTONIC ns; 0: not yet).
static TRACE_FROZEN_NS: AtomicU64 = AtomicU64::new(0);

/// When the first finding froze the run's trace, if it did: later findings have no events
/// after it in the trace, so no timeline of their own.
pub fn trace_frozen_at() -> Option<u64> {
    Some(TRACE_FROZEN_NS.load(Ordering::Acquire)).filter(|&t| t > 0)
}

/// Whether a trace is recording for this run (checking threads then time their windows).
pub fn tracing() -> bool {
    TRACE_FREEZE_FD.load(Ordering::Acquire) >= 0
}

/// Stop the run's trace, if there is one (async-signal-safe: one write(2); the fault handler
/// calls it). Later calls write again, harmlessly.
pub fn freeze_trace() {
    let fd = TRACE_FREEZE_FD.load(Ordering::Acquire);
    if fd >= 0 {
        let _ = TRACE_FROZEN_NS.compare_exchange(0, monotonic_ns(), Ordering::AcqRel, Ordering::Acquire);
        // SAFETY: writes one byte from a static buffer to a descriptor the tracer keeps open
        // while it is set; write is async-signal-safe.
        unsafe { libc::write(fd, b"0".as_ptr() as *const libc::c_void, 1) };
    }
}

/// Flush file systems and restart the machine (a VM started with -no-reboot then exits).
/// Only for the init of a VM; it does not return when it works.
pub fn restart_machine() -> io::Error {
    // SAFETY: sync has no preconditions; reboot only acts when the caller may reboot (PID 1 as
    // root in a VM), otherwise it fails with EPERM and returns.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    io::Error::last_os_error()
}
