//! The tracer's calls: a process of its own (ptrace forbids a thread to trace its own thread
//! group) that seizes the checking threads, stops them, reads and writes their register sets
//! and lets them go; and the shared memory through which it tells a checking thread what it saw
//! and wrote.

use super::*;

/// Words of memory shared with the processes this one forks (`MAP_SHARED | MAP_ANONYMOUS`,
/// made before the fork): the tracer's records for the checking threads.
pub struct SharedWords {
    base: *mut AtomicU64,
    len: usize,
}

// SAFETY: the memory is only reached as atomics, from any thread.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// `len` zeroed words, shared with every process forked after this.
    pub fn new(len: usize) -> io::Result<SharedWords> {
        let bytes = len.max(1) * 8;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedWords { base: p as *mut AtomicU64, len })
    }
}

impl std::ops::Deref for SharedWords {
    type Target = [AtomicU64];
    fn deref(&self) -> &[AtomicU64] {
        // SAFETY: `len` words mapped readable and writable for the life of `self`, zeroed by the
        // kernel (a valid AtomicU64 is any 8 bytes), 8-byte aligned (page aligned).
        unsafe { std::slice::from_raw_parts(self.base, self.len) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, of that size; no reference outlives `self`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len.max(1) * 8) };
    }
}

/// Fork a process that runs `body` and ends with its value as exit status; it dies with the
/// calling thread (PR_SET_PDEATHSIG SIGKILL), so it never outlives the run. The child must do
/// no more than `body` does: system calls, and memory that exists before the fork.
pub fn fork_process(body: impl FnOnce() -> i32) -> io::Result<i32> {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: fork duplicates the process; the child runs only `body` and then _exit, never
    // returning into the caller's frames (whose other threads it does not have).
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: prctl and getppid are async-signal-safe and touch no memory of ours.
            let code = unsafe {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
                    libc::_exit(2)
                }
                // A tracer must not take the run's stop signals: the run ends it.
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                body()
            };
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(pid),
    }
}

/// Let process `pid` trace this one (Yama's `PR_SET_PTRACER`; without Yama, nothing to do).
pub fn allow_tracer(pid: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_PTRACER, pid as libc::c_ulong, 0, 0, 0) };
    if r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Attach to thread `tid` without stopping it (`PTRACE_SEIZE`), with `PTRACE_O_TRACESYSGOOD`:
/// its system-call stops (after [`resume_syscall`]) are told apart from a real SIGTRAP.
pub fn seize(tid: i32) -> io::Result<()> {
    // SAFETY: ptrace with integer arguments (an options word).
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0, libc::PTRACE_O_TRACESYSGOOD as libc::c_long) } as i64)
}

/// Resume a stopped thread until its next system-call entry or exit (`PTRACE_SYSCALL`).
pub fn resume_syscall(tid: i32) -> io::Result<()> {
    // SAFETY: ptrace with integer arguments.
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_SYSCALL, tid, 0, 0) } as i64)
}

/// Whether thread `tid`, in a system-call stop, stopped at the call's exit (not its entry):
/// `PTRACE_GET_SYSCALL_INFO`'s `op` (Linux 5.3).
pub fn at_syscall_exit_stop(tid: i32) -> io::Result<bool> {
    // struct ptrace_syscall_info: `op` (u8) first; 88 bytes hold every member of its union.
    let mut info = [0u64; 11];
    // SAFETY: the kernel writes at most the size given into `info`, which outlives the call.
    let r = unsafe { libc::ptrace(libc::PTRACE_GET_SYSCALL_INFO, tid, std::mem::size_of_val(&info), info.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info[0] as u8 == libc::PTRACE_SYSCALL_INFO_EXIT)
}

/// Stop a seized thread at its next chance (`PTRACE_INTERRUPT`): a `PTRACE_EVENT_STOP`.
pub fn interrupt(tid: i32) -> io::Result<()> {
    // SAFETY: as above.
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0) } as i64)
}

/// Let a stopped thread go on, delivering `sig` (0 for none).
pub fn resume(tid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: as above.
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_CONT, tid, 0, sig as libc::c_long) } as i64)
}

/// Let a stopped thread go and stop tracing it (`PTRACE_DETACH`).
pub fn detach(tid: i32) -> io::Result<()> {
    // SAFETY: ptrace with integer arguments.
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0) } as i64)
}

/// Why a traced thread stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// `PTRACE_INTERRUPT`'s stop (or a group stop).
    Interrupt,
    /// About to get signal `.0` (a signal-delivery stop); resume with it to deliver it.
    Signal(i32),
    /// A system-call entry or exit stop (after `PTRACE_SYSCALL`).
    Syscall,
    /// It exited or was killed.
    Gone,
}

/// Wait for the next stop of any traced thread (`waitpid(-1, __WALL)`); `None` when there is
/// none to wait for.
pub fn wait_stop() -> io::Result<Option<(i32, Stop)>> {
    let mut status = 0;
    // SAFETY: waitpid writes only `status`.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
    if pid < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ECHILD) { Ok(None) } else { Err(e) };
    }
    let stop = if libc::WIFSTOPPED(status) {
        if status >> 16 == libc::PTRACE_EVENT_STOP {
            Stop::Interrupt
        } else if libc::WSTOPSIG(status) == libc::SIGTRAP | 0x80 {
            Stop::Syscall
        } else {
            Stop::Signal(libc::WSTOPSIG(status))
        }
    } else {
        Stop::Gone
    };
    Ok(Some((pid, stop)))
}

/// Read register set `note` of a stopped thread into `buf`; returns the bytes the kernel wrote.
pub fn get_regset(tid: i32, note: u32, buf: &mut [u8]) -> io::Result<usize> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: the kernel writes at most iov_len bytes into `buf` and the new length into iov.
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_GETREGSET, tid, note as libc::c_long, &mut iov as *mut libc::iovec) } as i64)?;
    Ok(iov.iov_len)
}

/// Write register set `note` of a stopped thread from `buf` (all of it: a shorter `buf` is a
/// partial write, where the regset allows one).
pub fn set_regset(tid: i32, note: u32, buf: &[u8]) -> io::Result<()> {
    let mut iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: the kernel only reads `buf` (iov_len bytes).
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_SETREGSET, tid, note as libc::c_long, &mut iov as *mut libc::iovec) } as i64)
}

/// Yama's ptrace scope (`/proc/sys/kernel/yama/ptrace_scope`), `None` without Yama.
pub fn yama_scope() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok()?.trim().parse().ok()
}
