//! Window checks: the allow-list every window's operation must pass before its assembly runs,
//! reaping fork children, and the fresh pages of page-fault windows.

use super::*;

/// Refuse a window that could break memory safety: only syscalls that return to this thread,
/// or fork/vfork whose child leaves at once, and page touches inside `touch`.
pub(crate) fn check_window_op(op: &mut WindowOp, touch: Option<&mut [u8]>) {
    let syscall = crate::window::vet(op);
    let syscall = syscall.unwrap_or_else(|| panic!("syscall {} with {:x?} is no window's: not allowed", op.sysno, op.args));
    assert!(op.flags & FLAG_SCV == 0 || crate::arch::native().has_scv(), "scv windows need the scv instruction");
    if syscall.is_some_and(|s| s.child) {
        op.flags |= FLAG_CHILD_EXIT;
    } else {
        op.flags &= !FLAG_CHILD_EXIT;
    }
    match touch {
        Some(page) if op.flags & FLAG_TOUCH != 0 => op.touch = page.as_mut_ptr() as u64,
        _ => op.flags &= !FLAG_TOUCH,
    }
}

/// Reap the child a fork/vfork window made; returns its exit status. A child that has not
/// exited after `patience` (it should exit at once) is killed and reaped, so a run never hangs
/// on one; the error says so.
pub fn reap(pid: i64, patience: std::time::Duration) -> io::Result<i32> {
    let start = std::time::Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only `status`.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::__WALL | libc::WNOHANG) };
        if r > 0 {
            return Ok(status);
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if start.elapsed() > patience {
            // SAFETY: kill and a blocking waitpid on our own child.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
                libc::waitpid(pid as libc::pid_t, &mut status, libc::__WALL);
            }
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("fork child {pid} did not exit; killed")));
        }
        std::thread::sleep(std::time::Duration::from_micros(20));
    }
}

/// Anonymous pages that page-fault windows touch for the first time, one per window; when all
/// were touched they are given back to the kernel (MADV_DONTNEED) and touched afresh.
pub struct FreshPages {
    base: *mut u8,
    len: usize,
    next: usize,
}

// SAFETY: the mapping is owned by this value alone.
unsafe impl Send for FreshPages {}

impl FreshPages {
    const PAGES: usize = 256;

    pub fn new() -> io::Result<FreshPages> {
        let len = Self::PAGES * 4096;
        // SAFETY: a new private anonymous mapping, owned by the returned value.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(FreshPages { base: p as *mut u8, len, next: 0 })
    }

    /// A page that has not been touched since it was last given back.
    pub fn fresh(&mut self) -> &mut [u8] {
        if self.next == Self::PAGES {
            // SAFETY: the range is our own mapping; its contents are not needed.
            unsafe { libc::madvise(self.base as *mut libc::c_void, self.len, libc::MADV_DONTNEED) };
            self.next = 0;
        }
        let i = self.next;
        self.next += 1;
        // SAFETY: page i lies inside the mapping, and `&mut self` makes the slice unique.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(i * 4096), 4096) }
    }
}

impl Drop for FreshPages {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; no slice into it outlives `&mut self`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}
