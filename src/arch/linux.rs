//! Linux calls every backend shares: thread ids, signals and their handlers, the fault
//! injector's hand-off, fresh pages for page-fault windows, reaping fork children.
//!
//! Safe wrappers over `libc`; each `unsafe` block says why it is sound. The signal handlers
//! only touch atomics, pre-built buffers and the frame they were given.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::arch::Fault;
use crate::class::ClassId;
use crate::window::{FLAG_CHILD_EXIT, FLAG_TOUCH, WindowOp};

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
    let r = unsafe { libc::syscall(libc::SYS_tgkill, getpid(), tid, sig) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
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
    let ours = if cfg!(target_arch = "x86_64") {
        info.contains("vendor_id")
    } else if cfg!(target_arch = "aarch64") {
        info.contains("CPU implementer") || info.contains("CPU architecture")
    } else if cfg!(target_arch = "powerpc64") {
        info.lines().any(|l| l.starts_with("cpu\t") && (l.contains("POWER") || l.contains("PPC")))
    } else {
        true
    };
    !ours
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

// ----------------------------------------------------------------------------- window checks

/// Refuse a window that could break memory safety: only syscalls that return to this thread,
/// or fork/vfork whose child leaves at once, and page touches inside `touch`.
pub(crate) fn check_window_op(op: &mut WindowOp, touch: Option<&mut [u8]>) {
    const ALLOWED: [libc::c_long; 6] = [
        libc::SYS_getppid,
        libc::SYS_sched_yield,
        libc::SYS_tgkill,
        libc::SYS_clone,
        libc::SYS_membarrier,
        libc::SYS_getpid,
    ];
    if op.sysno >= 0 {
        assert!(ALLOWED.contains(&(op.sysno as libc::c_long)), "syscall {} not allowed in a window", op.sysno);
    }
    if op.sysno == libc::SYS_clone as i64 {
        let flags = op.args[0] as libc::c_int;
        let vfork = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        assert!(flags == libc::SIGCHLD || flags == vfork, "clone flags {flags:#x} not allowed in a window");
        assert!(op.args[1..].iter().all(|&a| a == 0), "clone in a window takes no stack or tls");
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
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(FreshPages { base: p as *mut u8, len, next: 0 })
    }

    /// A page that has not been touched since it was last given back.
    pub fn next(&mut self) -> &mut [u8] {
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

// ----------------------------------------------------------------------------- signal handlers

/// Class bits ([`ClassId::code`]) the clobbering handler overwrites.
static CLOBBER_MASK: AtomicU32 = AtomicU32::new(0);
/// The values the clobbering handler loads: a leaked `Vec<(ClassId, Vec<u64>)>`.
static CLOBBER_VALUES: AtomicPtr<Vec<(ClassId, Vec<u64>)>> = AtomicPtr::new(std::ptr::null_mut());
/// How many times the clobbering handler ran, per signal (index: signal - SIGRTMIN).
static SIG_COUNTS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];


fn sigaction(sig: i32, handler: usize, flags: i32) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; the handler is an extern "C" function of the right
    // SA_SIGINFO signature or SIG_DFL, and its body is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Install the clobbering and injecting handlers (once per process) and set what the
/// clobbering handler loads: for each class, a buffer of its layout's length.
pub fn set_clobber_values(values: Vec<(ClassId, Vec<u64>)>) -> io::Result<()> {
    let mask = values.iter().fold(0, |m, (c, _)| m | 1 << c.code());
    let old = CLOBBER_VALUES.swap(Box::into_raw(Box::new(values)), Ordering::AcqRel);
    // The old values are leaked on purpose: a handler running now may still read them.
    let _ = old;
    CLOBBER_MASK.store(mask, Ordering::Release);
    let flags = libc::SA_SIGINFO | libc::SA_RESTART;
    [sig_clobber(), sig_tgkill(), sig_timer()]
        .into_iter()
        .try_for_each(|sig| sigaction(sig, on_clobber as *const () as usize, flags))?;
    sigaction(sig_inject(), on_inject as *const () as usize, flags)
}

/// Put back the default disposition of every signal regtorture handles. Call only when no
/// thread that could still receive one of them is alive (a run's threads are all joined).
pub fn restore_default_handlers() {
    for sig in [sig_clobber(), sig_tgkill(), sig_timer(), sig_inject(), libc::SIGINT, libc::SIGTERM] {
        let _ = sigaction(sig, libc::SIG_DFL, 0);
    }
}

/// Whether `sig` has a handler installed (not SIG_DFL / SIG_IGN).
pub fn has_handler(sig: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old);
        old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN
    }
}

extern "C" fn on_clobber(sig: i32, _info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    SIG_COUNTS[((sig - libc::SIGRTMIN()) & 7) as usize].fetch_add(1, Ordering::Relaxed);
    let mask = CLOBBER_MASK.load(Ordering::Acquire);
    let values = CLOBBER_VALUES.load(Ordering::Acquire);
    if values.is_null() {
        return;
    }
    // SAFETY: the pointer came from Box::into_raw and is never freed.
    let values = unsafe { &*values };
    for (class, v) in values {
        if mask & (1 << class.code()) != 0 {
            // SAFETY: this is the handler's last action; sigreturn restores MXCSR and FCW.
            unsafe { super::clobber(*class, v) };
        }
    }
}

/// Injection states.
pub const INJECT_IDLE: u32 = 0;
pub const INJECT_ARMED: u32 = 1;
/// The fault was written into the frame of a thread inside its window.
pub const INJECT_LANDED: u32 = 2;
/// The signal arrived outside the live window: nothing was changed.
pub const INJECT_MISSED: u32 = 3;
/// The frame has no image of that register.
pub const INJECT_FAILED: u32 = 4;

static INJ_STATE: AtomicU32 = AtomicU32::new(INJECT_IDLE);
static INJ_TID: AtomicI32 = AtomicI32::new(0);
static INJ_CLASS: AtomicU32 = AtomicU32::new(0);
static INJ_REG: AtomicUsize = AtomicUsize::new(0);
static INJ_LANE: AtomicUsize = AtomicUsize::new(0);
static INJ_MASK: AtomicU64 = AtomicU64::new(0);
/// The iteration the target was in when the fault landed (it publishes it in [`CURRENT_ITERATION`]).
static INJ_ITERATION: AtomicU64 = AtomicU64::new(0);
/// The iteration the injection target is running; written by the selftest's checking thread.
pub static CURRENT_ITERATION: AtomicU64 = AtomicU64::new(0);
static INJECTING: AtomicBool = AtomicBool::new(false);
/// Replay a known bug's effect instead of XORing the mask.
static INJ_REPLAY: AtomicBool = AtomicBool::new(false);

/// Arm the injector for `fault` in thread `tid`, then signal it. Returns the outcome once the
/// handler ran (one of the `INJECT_*` states) and the iteration it landed in.
pub fn inject_fault(tid: i32, fault: Fault) -> io::Result<(u32, u64)> {
    inject_with(tid, fault, false)
}

/// Like [`inject_fault`], but make the frame look as a known bug of this architecture left the
/// registers of `fault.class` (see `replay_known_bug`); INJECT_FAILED where there is none.
pub fn replay_known_bug(tid: i32, fault: Fault) -> io::Result<(u32, u64)> {
    inject_with(tid, fault, true)
}

fn inject_with(tid: i32, fault: Fault, replay: bool) -> io::Result<(u32, u64)> {
    // One injection at a time: the request lives in statics the handler reads.
    while INJECTING.swap(true, Ordering::AcqRel) {
        std::thread::yield_now();
    }
    INJ_REPLAY.store(replay, Ordering::Relaxed);
    INJ_TID.store(tid, Ordering::Relaxed);
    INJ_CLASS.store(fault.class.code(), Ordering::Relaxed);
    INJ_REG.store(fault.reg, Ordering::Relaxed);
    INJ_LANE.store(fault.lane, Ordering::Relaxed);
    INJ_MASK.store(fault.mask, Ordering::Relaxed);
    INJ_STATE.store(INJECT_ARMED, Ordering::Release);
    let sent = tgkill(tid, sig_inject());
    let start = std::time::Instant::now();
    let mut state = INJ_STATE.load(Ordering::Acquire);
    while sent.is_ok() && state == INJECT_ARMED && start.elapsed().as_secs() < 5 {
        std::hint::spin_loop();
        state = INJ_STATE.load(Ordering::Acquire);
    }
    INJ_STATE.store(INJECT_IDLE, Ordering::Release);
    INJECTING.store(false, Ordering::Release);
    sent?;
    if state == INJECT_ARMED {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "the injection signal was not handled within 5 s"));
    }
    Ok((state, INJ_ITERATION.load(Ordering::Acquire)))
}

extern "C" fn on_inject(_sig: i32, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    if INJ_STATE.load(Ordering::Acquire) != INJECT_ARMED || INJ_TID.load(Ordering::Relaxed) != gettid() {
        return;
    }
    let Some(class) = ClassId::from_code(INJ_CLASS.load(Ordering::Relaxed)) else { return };
    let fault = Fault {
        class,
        reg: INJ_REG.load(Ordering::Relaxed),
        lane: INJ_LANE.load(Ordering::Relaxed),
        mask: INJ_MASK.load(Ordering::Relaxed),
    };
    let (begin, end) = super::live_range(class);
    // SAFETY: `uc` is this handler's own frame.
    let pc = unsafe { super::frame_pc(uc) };
    let state = if !(begin..end).contains(&pc) {
        INJECT_MISSED
    // SAFETY: as above.
    } else if unsafe {
        if INJ_REPLAY.load(Ordering::Relaxed) { super::replay_known_bug(uc, class) } else { super::inject(uc, &fault) }
    } {
        INJ_ITERATION.store(CURRENT_ITERATION.load(Ordering::Acquire), Ordering::Release);
        INJECT_LANDED
    } else {
        INJECT_FAILED
    };
    INJ_STATE.store(state, Ordering::Release);
}

// ----------------------------------------------------------------------------- stop requests

/// Set by SIGINT or SIGTERM: the run should stop and report.
pub static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: i32) {
    STOP_REQUESTED.store(true, Ordering::Release);
}

/// Make SIGINT and SIGTERM ask the run to stop; a second one ends the process at once.
pub fn catch_stop_signals() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        sigaction(sig, on_stop as *const () as usize, libc::SA_RESETHAND)?;
    }
    Ok(())
}

// ----------------------------------------------------------------------------- trigger helpers

/// A POSIX timer that signals one thread (SIGEV_THREAD_ID) every `interval`; deleted on drop.
pub struct ThreadTimer(libc::timer_t);

// SAFETY: a timer id is a plain handle; timer_delete may be called from any thread.
unsafe impl Send for ThreadTimer {}

impl ThreadTimer {
    pub fn new(tid: i32, sig: i32, interval: std::time::Duration) -> io::Result<ThreadTimer> {
        // SAFETY: sigevent is plain data; SIGEV_THREAD_ID names a thread of this process, whose
        // id lives in the union glibc calls _sigev_un._tid (libc exposes it as sigev_notify_thread_id).
        unsafe {
            let mut sev: libc::sigevent = std::mem::zeroed();
            sev.sigev_notify = libc::SIGEV_THREAD_ID;
            sev.sigev_signo = sig;
            sev.sigev_notify_thread_id = tid;
            let mut id: libc::timer_t = std::mem::zeroed();
            if libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut id) != 0 {
                return Err(io::Error::last_os_error());
            }
            let ts = libc::timespec { tv_sec: interval.as_secs() as _, tv_nsec: interval.subsec_nanos() as _ };
            let spec = libc::itimerspec { it_interval: ts, it_value: ts };
            if libc::timer_settime(id, 0, &spec, std::ptr::null_mut()) != 0 {
                let e = io::Error::last_os_error();
                libc::timer_delete(id);
                return Err(e);
            }
            Ok(ThreadTimer(id))
        }
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: the id came from timer_create and is deleted once.
        unsafe { libc::timer_delete(self.0) };
    }
}

/// membarrier(2) with `cmd`; returns its result.
pub fn membarrier(cmd: i32) -> io::Result<i32> {
    // SAFETY: membarrier takes plain integers.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as i32) }
}

/// Map a page, write it, then `mprotect` it read-only and unmap it: each step that takes a
/// mapping away makes the kernel flush the TLBs of every CPU running this process (IPIs).
pub fn tlb_churn() -> io::Result<()> {
    // SAFETY: a fresh private anonymous page, written, protected and unmapped by us alone.
    unsafe {
        let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        (p as *mut u8).write_volatile(1);
        libc::mprotect(p, 4096, libc::PROT_READ);
        libc::munmap(p, 4096);
    }
    Ok(())
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// Pin thread `tid` to the CPUs in `cpus`.
pub fn set_affinity(tid: i32, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: as above; sched_setaffinity reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        cpus.iter().for_each(|&c| libc::CPU_SET(c, &mut set));
        if libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Involuntary context switches (preemptions) of the calling thread so far.
pub fn involuntary_switches() -> u64 {
    // SAFETY: getrusage writes only the struct.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        ru.ru_nivcsw as u64
    }
}

// ----------------------------------------------------------------------------- init in a VM

/// mount(2) of a pseudo filesystem at `target` (created if missing).
pub fn mount_fs(source: &str, target: &str, fstype: &str) -> io::Result<()> {
    let _ = std::fs::create_dir_all(target);
    let c = |s: &str| std::ffi::CString::new(s).map_err(|_| io::Error::other("NUL in a mount argument"));
    let (src, tgt, ty) = (c(source)?, c(target)?, c(fstype)?);
    // SAFETY: three NUL-terminated strings that outlive the call, no data argument.
    let r = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
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
