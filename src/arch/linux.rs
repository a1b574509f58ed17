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
    !super::native().cpuinfo_is_native(&info)
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
    let syscall = crate::window::vet(op);
    let syscall = syscall.unwrap_or_else(|| panic!("syscall {} with {:x?} is no window's: not allowed", op.sysno, op.args));
    assert!(op.flags & FLAG_SCV == 0 || super::native().has_scv(), "scv windows need the scv instruction");
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
        zero_ok(libc::sigaction(sig, &sa, std::ptr::null_mut()))?;
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
    [sig_clobber(), sig_tgkill(), sig_timer()].into_iter().try_for_each(|sig| sigaction(sig, on_clobber as *const () as usize, flags))?;
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

/// Clobbering-handler runs whose interrupted context was the return from a system call of a
/// window (the signal was delivered on that syscall's exit).
static AT_SYSCALL_EXIT: AtomicU64 = AtomicU64::new(0);

/// How many handled signals were delivered on the exit of a window's system call.
pub fn signals_at_syscall_exit() -> u64 {
    AT_SYSCALL_EXIT.load(Ordering::Relaxed)
}

extern "C" fn on_clobber(sig: i32, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    SIG_COUNTS[((sig - libc::SIGRTMIN()) & 7) as usize].fetch_add(1, Ordering::Relaxed);
    if let Some(slot) = count_thread_signal() {
        window_timer_fired(sig, slot);
    }
    // SAFETY: `uc` is this handler's frame; the backend reads the instruction before the PC
    // only when the PC lies in one of its own windows.
    if unsafe { super::at_syscall_exit(uc) } {
        AT_SYSCALL_EXIT.fetch_add(1, Ordering::Relaxed);
    }
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
            unsafe { super::native().clobber(*class, v) };
        }
    }
}

/// What became of an injection request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Inject {
    /// No request.
    Idle = 0,
    /// Requested; the signal is on its way.
    Armed = 1,
    /// The fault was written into the frame of a thread inside its window.
    Landed = 2,
    /// The signal arrived outside the live window: nothing was changed.
    Missed = 3,
    /// The frame has no image of that register.
    Failed = 4,
}

impl Inject {
    fn from_u32(v: u32) -> Inject {
        match v {
            1 => Inject::Armed,
            2 => Inject::Landed,
            3 => Inject::Missed,
            4 => Inject::Failed,
            _ => Inject::Idle,
        }
    }
}

/// What the injecting handler does to the frame.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Mode {
    /// XOR the fault's mask into one lane.
    Xor = 0,
    /// Make the frame look as a known bug left it (`replay_known_bug`).
    Replay = 1,
    /// Make sigreturn resume at a bad address (`misreturn`).
    Misreturn = 2,
}

/// The request the injecting handler reads: atomics, since a signal handler reads them (one
/// request at a time: [`INJECTING`]).
struct Request {
    state: AtomicU32,
    tid: AtomicI32,
    class: AtomicU32,
    reg: AtomicUsize,
    lane: AtomicUsize,
    mask: AtomicU64,
    /// The lowest interrupted PC at which the fault may land (0: the live window's start).
    from_pc: AtomicUsize,
    /// The iteration the target was in when the fault landed (it publishes it in
    /// [`CURRENT_ITERATION`]).
    iteration: AtomicU64,
    mode: AtomicU32,
}

static REQ: Request = Request {
    state: AtomicU32::new(Inject::Idle as u32),
    tid: AtomicI32::new(0),
    class: AtomicU32::new(0),
    reg: AtomicUsize::new(0),
    lane: AtomicUsize::new(0),
    mask: AtomicU64::new(0),
    from_pc: AtomicUsize::new(0),
    iteration: AtomicU64::new(0),
    mode: AtomicU32::new(Mode::Xor as u32),
};
/// The iteration the injection target is running; written by the selftest's checking thread.
pub static CURRENT_ITERATION: AtomicU64 = AtomicU64::new(0);
static INJECTING: AtomicBool = AtomicBool::new(false);

/// Arm the injector for `fault` in thread `tid`, then signal it. Returns the outcome once the
/// handler ran and the iteration it landed in.
pub fn inject_fault(tid: i32, fault: Fault) -> io::Result<(Inject, u64)> {
    inject_with(tid, fault, Mode::Xor, 0)
}

/// [`inject_fault`], landing only after the window's syscall returned (the interrupted PC past
/// the live window's first system-call instruction): into what the kernel left there.
pub fn inject_after_syscall(tid: i32, fault: Fault) -> io::Result<(Inject, u64)> {
    let Some(pc) = super::after_first_syscall(fault.class) else {
        return Err(io::Error::other(format!("the {} window routine has no system-call instruction", fault.class)));
    };
    inject_with(tid, fault, Mode::Xor, pc)
}

/// Arm the injector to make thread `tid` (inside a window of `fault.class`) return from the
/// signal to a bad address: the machine-state image, or on powerpc64 the exact state of the
/// fast-syscall-exit signal bug (see the backend's `misreturn`). The fault forensics must
/// report what follows.
pub fn misreturn(tid: i32, fault: Fault) -> io::Result<(Inject, u64)> {
    inject_with(tid, fault, Mode::Misreturn, 0)
}

/// Like [`inject_fault`], but make the frame look as a known bug of this architecture left the
/// registers of `fault.class` (see `replay_known_bug`); `Inject::Failed` where there is none.
pub fn replay_known_bug(tid: i32, fault: Fault) -> io::Result<(Inject, u64)> {
    inject_with(tid, fault, Mode::Replay, 0)
}

fn inject_with(tid: i32, fault: Fault, mode: Mode, from_pc: usize) -> io::Result<(Inject, u64)> {
    // One injection at a time: the request lives in statics the handler reads.
    while INJECTING.swap(true, Ordering::AcqRel) {
        std::thread::yield_now();
    }
    REQ.mode.store(mode as u32, Ordering::Relaxed);
    REQ.tid.store(tid, Ordering::Relaxed);
    REQ.class.store(fault.class.code(), Ordering::Relaxed);
    REQ.reg.store(fault.reg, Ordering::Relaxed);
    REQ.lane.store(fault.lane, Ordering::Relaxed);
    REQ.mask.store(fault.mask, Ordering::Relaxed);
    REQ.from_pc.store(from_pc, Ordering::Relaxed);
    REQ.state.store(Inject::Armed as u32, Ordering::Release);
    let state = || Inject::from_u32(REQ.state.load(Ordering::Acquire));
    let sent = tgkill(tid, sig_inject());
    let start = std::time::Instant::now();
    let mut now = state();
    // A checking thread with a lifetime can end with the signal pending, which then is never
    // handled: stop waiting when the thread is gone (measured: without this, 2 of 10 runs of
    // the inject control among every trigger found it 5.4 or 10.8 s late, not 0.2 s).
    let mut gone = false;
    let mut spins = 0u32;
    while sent.is_ok() && now == Inject::Armed && !gone && start.elapsed().as_secs() < 5 {
        std::hint::spin_loop();
        now = state();
        spins = spins.wrapping_add(1);
        if spins % 4096 == 0 {
            gone = tgkill(tid, 0).is_err();
            now = state();
        }
    }
    REQ.state.store(Inject::Idle as u32, Ordering::Release);
    INJECTING.store(false, Ordering::Release);
    sent?;
    if now == Inject::Armed && gone {
        return Err(io::Error::new(io::ErrorKind::NotFound, "the thread ended before it handled the injection signal"));
    }
    if now == Inject::Armed {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "the injection signal was not handled within 5 s"));
    }
    Ok((now, REQ.iteration.load(Ordering::Acquire)))
}

extern "C" fn on_inject(_sig: i32, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    count_thread_signal();
    if REQ.state.load(Ordering::Acquire) != Inject::Armed as u32 || REQ.tid.load(Ordering::Relaxed) != gettid() {
        return;
    }
    let Some(class) = ClassId::from_code(REQ.class.load(Ordering::Relaxed)) else { return };
    let fault = Fault { class, reg: REQ.reg.load(Ordering::Relaxed), lane: REQ.lane.load(Ordering::Relaxed), mask: REQ.mask.load(Ordering::Relaxed) };
    let (begin, end) = super::native().live_range(class);
    // SAFETY: `uc` is this handler's own frame.
    let pc = unsafe { super::native().frame_pc(uc) };
    let begin = begin.max(REQ.from_pc.load(Ordering::Relaxed));
    let state = if !(begin..end).contains(&pc) {
        Inject::Missed
    // SAFETY: as above.
    } else if unsafe {
        match REQ.mode.load(Ordering::Relaxed) {
            m if m == Mode::Replay as u32 => super::native().replay_known_bug(uc, class),
            m if m == Mode::Misreturn as u32 => super::native().misreturn(uc),
            _ => super::native().inject(uc, &fault),
        }
    } {
        REQ.iteration.store(CURRENT_ITERATION.load(Ordering::Acquire), Ordering::Release);
        Inject::Landed
    } else {
        Inject::Failed
    };
    REQ.state.store(state as u32, Ordering::Release);
}

// ----------------------------------------------------------------------------- stop requests

/// Set by SIGINT or SIGTERM: the run should stop and report.
pub static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: i32) {
    // A handled signal like any other: landing on a checking thread inside its window's
    // syscall, it makes that syscall return EINTR, which the window must then accept.
    count_thread_signal();
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
        Self::create(tid, sig, interval, interval)
    }

    fn create(tid: i32, sig: i32, first: std::time::Duration, interval: std::time::Duration) -> io::Result<ThreadTimer> {
        // SAFETY: sigevent is plain data; SIGEV_THREAD_ID names a thread of this process, whose
        // id lives in the union glibc calls _sigev_un._tid (libc exposes it as sigev_notify_thread_id).
        unsafe {
            let mut sev: libc::sigevent = std::mem::zeroed();
            sev.sigev_notify = libc::SIGEV_THREAD_ID;
            sev.sigev_signo = sig;
            sev.sigev_notify_thread_id = tid;
            let mut id: libc::timer_t = std::mem::zeroed();
            zero_ok(libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut id))?;
            let spec = libc::itimerspec { it_interval: timespec(interval), it_value: timespec(first) };
            if libc::timer_settime(id, 0, &spec, std::ptr::null_mut()) != 0 {
                let e = io::Error::last_os_error();
                libc::timer_delete(id);
                return Err(e);
            }
            LIVE_TIMERS.lock().unwrap_or_else(|e| e.into_inner()).push(id as usize);
            Ok(ThreadTimer(id))
        }
    }
}

fn timespec(d: std::time::Duration) -> libc::timespec {
    libc::timespec { tv_sec: d.as_secs() as _, tv_nsec: d.subsec_nanos() as _ }
}

/// At most this many signals of one trigger (tgkill, timer) reach a checking thread per window
/// it begins. Natively a window seldom lasts that many periods, so the bound seldom holds one
/// back; under QEMU's TCG a handler can outlast the period (saving kilobytes of V or SVE
/// state), and unbounded signals then kept threads in their handlers with no window completed.
pub const SIGNALS_PER_WINDOW: u64 = 3;

/// A periodic POSIX timer of the calling checking thread that stops itself (in the handler)
/// after [`SIGNALS_PER_WINDOW`] signals within one window, and starts again at the next window
/// the thread begins ([`window_begun`]).
pub struct WindowTimer {
    _timer: ThreadTimer,
    slot: usize,
}

/// Per checking-thread number: its [`WindowTimer`]'s id plus one (0: none), its interval (ns),
/// the window count its signals are being counted for, how many fired in that window, and
/// whether it stopped itself (set by the handler).
static WINDOW_TIMER: [AtomicUsize; THREAD_SLOTS_MAX] = [const { AtomicUsize::new(0) }; THREAD_SLOTS_MAX];
static WINDOW_TIMER_INTERVAL: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
static WINDOW_TIMER_WINDOW: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
static WINDOW_TIMER_FIRES: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
static WINDOW_TIMER_STOPPED: [AtomicBool; THREAD_SLOTS_MAX] = [const { AtomicBool::new(false) }; THREAD_SLOTS_MAX];

impl WindowTimer {
    /// For the calling thread, which must be a registered checking thread.
    pub fn new(sig: i32, interval: std::time::Duration) -> io::Result<WindowTimer> {
        let slot = checker_slot(gettid()).ok_or_else(|| io::Error::other("not a registered checking thread"))?;
        let timer = ThreadTimer::create(gettid(), sig, interval, interval)?;
        WINDOW_TIMER_STOPPED[slot].store(false, Ordering::Relaxed);
        WINDOW_TIMER_FIRES[slot].store(0, Ordering::Relaxed);
        WINDOW_TIMER_INTERVAL[slot].store(interval.as_nanos() as u64, Ordering::Relaxed);
        WINDOW_TIMER[slot].store(timer.0 as usize + 1, Ordering::Release);
        Ok(WindowTimer { _timer: timer, slot })
    }
}

impl Drop for WindowTimer {
    fn drop(&mut self) {
        // The owning thread drops it, and only it (its handler, its window loop) sets the
        // timer, so nothing sets it after this.
        WINDOW_TIMER[self.slot].store(0, Ordering::Release);
    }
}

/// Set checking thread `slot`'s window timer to fire every `interval` (zero: stop it).
/// Async-signal-safe (timer_settime is).
fn set_window_timer(slot: usize, interval: std::time::Duration) {
    let id = WINDOW_TIMER[slot].load(Ordering::Acquire);
    if id == 0 {
        return;
    }
    let spec = libc::itimerspec { it_interval: timespec(interval), it_value: timespec(interval) };
    // SAFETY: the id is the live WindowTimer's of the calling thread (only it sets the timer,
    // and its Drop, on this thread, clears the slot before the timer is deleted).
    unsafe { libc::timer_settime((id - 1) as libc::timer_t, 0, &spec, std::ptr::null_mut()) };
}

/// The handler's part: the timer of the checking thread in `slot` fired (async-signal-safe).
fn window_timer_fired(sig: i32, slot: usize) {
    if sig != sig_timer() || WINDOW_TIMER[slot].load(Ordering::Relaxed) == 0 {
        return;
    }
    let window = THREAD_WINDOWS[slot].load(Ordering::Relaxed);
    if WINDOW_TIMER_WINDOW[slot].swap(window, Ordering::Relaxed) != window {
        WINDOW_TIMER_FIRES[slot].store(0, Ordering::Relaxed);
    }
    if WINDOW_TIMER_FIRES[slot].fetch_add(1, Ordering::Relaxed) + 1 >= SIGNALS_PER_WINDOW {
        set_window_timer(slot, std::time::Duration::ZERO);
        WINDOW_TIMER_STOPPED[slot].store(true, Ordering::Relaxed);
    }
}

/// Start the window timer of checking thread `n` again, if it stopped itself.
fn restart_window_timer(n: usize) {
    if WINDOW_TIMER_STOPPED[n].swap(false, Ordering::Relaxed) {
        set_window_timer(n, std::time::Duration::from_nanos(WINDOW_TIMER_INTERVAL[n].load(Ordering::Relaxed)));
    }
}

/// The ids of the [`ThreadTimer`]s that exist, so that [`disarm_thread_timers`] can stop them
/// all from any thread.
static LIVE_TIMERS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Stop every [`ThreadTimer`] from firing (they stay until dropped). When a run ends, a thread
/// whose signal handling takes longer than the timer's interval (an emulated CPU saving a wide
/// vector state) would otherwise never get back to its loop to see that it must stop.
pub fn disarm_thread_timers() {
    // No window timer is started again (one being started as this runs may fire on).
    for t in &WINDOW_TIMER {
        t.store(0, Ordering::Release);
    }
    let live = LIVE_TIMERS.lock().unwrap_or_else(|e| e.into_inner());
    for &id in live.iter() {
        let zero = libc::itimerspec { it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 }, it_value: libc::timespec { tv_sec: 0, tv_nsec: 0 } };
        // SAFETY: the id is live (its owner removes it under this lock before deleting it); a
        // zero it_value disarms it.
        unsafe { libc::timer_settime(id as libc::timer_t, 0, &zero, std::ptr::null_mut()) };
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        let mut live = LIVE_TIMERS.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|&id| id != self.0 as usize);
        // SAFETY: the id came from timer_create and is deleted once, under the lock.
        unsafe { libc::timer_delete(self.0) };
    }
}

/// membarrier(2) with `cmd`; returns its result.
pub fn membarrier(cmd: i32) -> io::Result<i32> {
    // SAFETY: membarrier takes plain integers.
    nonneg(unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) }).map(|r| r as i32)
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
        zero_ok(libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set))?;
    }
    Ok(())
}

/// Involuntary context switches (preemptions) of the calling thread so far.
/// This thread's context switches so far, voluntary and involuntary (getrusage RUSAGE_THREAD).
pub fn context_switches() -> u64 {
    // SAFETY: getrusage writes only the struct.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        (ru.ru_nvcsw + ru.ru_nivcsw) as u64
    }
}

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

// ----------------------------------------------------------------------------- fault forensics

/// Faults kept in full (more are counted in [`fault_count`]).
pub const FAULT_SLOTS: usize = 8;
/// Registers a fault record holds at most (the backend's `FAULT_REGS` names them).
pub const FAULT_REGS_MAX: usize = 48;
/// The words of a fault record (`FAULT_DATA`): a head of these, then the registers from HEAD.
mod rec {
    pub const SIGNO: usize = 0;
    pub const CODE: usize = 1;
    pub const ADDR: usize = 2;
    pub const TID: usize = 3;
    pub const RECOVERED: usize = 4;
    pub const WHEN_NS: usize = 5;
    pub const NREGS: usize = 6;
    /// Four words: 1 if a signal was lost, then its number, thread and pc (the backend's
    /// `recover`).
    pub const LOST: usize = 7;
    /// (checking-thread slot + 1) << 48 | what it was doing; 0 for another thread.
    pub const CHECKER: usize = 11;
    /// The faulting checking thread's published window start (or end, with OUTSIDE).
    pub const WINDOW: usize = 12;
    pub const HEAD: usize = 13;
}
use rec::HEAD;

/// The signals that mean a thread cannot go on as it was: handled as findings, not deaths.
pub const FAULT_SIGNALS: [i32; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGTRAP, libc::SIGFPE];

/// One fault as the handler recorded it: the signal, where, and every register of the frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFault {
    pub signo: i32,
    pub code: i32,
    pub addr: u64,
    pub tid: i32,
    /// The handler repaired the frame and the thread went on (see the backend's `recover`).
    pub recovered: bool,
    /// CLOCK_MONOTONIC nanoseconds at the fault.
    pub when_ns: u64,
    /// The registers of the faulting context, named by the backend's `FAULT_REGS`.
    pub regs: Vec<u64>,
    /// powerpc64: the frame of a signal that was set up but whose handler was never reached,
    /// read from the stack the fault left: (signal, trap, nip of the interrupted context).
    pub lost_signal: Option<(u64, u64, u64)>,
    /// The checking thread's number and what it was doing ([`set_doing`]), when a checking
    /// thread faulted.
    pub checker: Option<(u32, u64)>,
    /// CLOCK_MONOTONIC nanoseconds at the start of the window the faulting checking thread was
    /// in ([`set_window_start`]; kept only while a trace records).
    pub window_start_ns: Option<u64>,
    /// For a checking thread that faulted outside a window: when its last window ended, or,
    /// before its first, when it registered ([`set_window_end`], [`register_thread`]).
    pub outside_since_ns: Option<u64>,
}

/// In a published window start: the thread is in no window, and has not been since then.
const OUTSIDE: u64 = 1 << 63;

static FAULT_NEXT: AtomicUsize = AtomicUsize::new(0);
static FAULT_TOTAL: AtomicU64 = AtomicU64::new(0);
static FAULT_READY: [AtomicBool; FAULT_SLOTS] = [const { AtomicBool::new(false) }; FAULT_SLOTS];
static FAULT_DATA: [[AtomicU64; HEAD + FAULT_REGS_MAX]; FAULT_SLOTS] = [const { [const { AtomicU64::new(0) }; HEAD + FAULT_REGS_MAX] }; FAULT_SLOTS];
/// A fault that the thread could not survive happened: the run must stop and report.
static FATAL: AtomicBool = AtomicBool::new(false);
/// A run's monitor is watching [`fatal_fault`] and will report (else the handler reports).
pub static MONITORED: AtomicBool = AtomicBool::new(false);
/// The address a thread must resume at to finish a signal return (the vDSO's sigreturn
/// trampoline), for the backend's `recover`; 0 where there is none.
pub(crate) static SIGRETURN_TRAMPOLINE: AtomicUsize = AtomicUsize::new(0);
/// Where the vDSO's signal trampoline starts (the instruction that calls the handler).
pub(crate) static SIGNAL_TRAMPOLINE: AtomicUsize = AtomicUsize::new(0);

/// How many checking-thread numbers the per-thread tables hold: numbers 0 to this less one.
/// A number past it has no slot ([`slot`]): it is never folded onto another thread's.
pub const THREAD_SLOTS_MAX: usize = 1024;
const _: () = assert!((crate::pattern::MAX_THREADS as usize) < THREAD_SLOTS_MAX);

/// The table slot of checking thread `n`, if it has one.
#[inline]
pub fn slot(n: u32) -> Option<usize> {
    ((n as usize) < THREAD_SLOTS_MAX).then_some(n as usize)
}

/// Kernel thread ids of the checking threads by number, and what each one is doing (an
/// engine-defined word, 0 for nothing): the fault handler copies the word of the faulting
/// thread into its record.
static THREAD_TIDS: [AtomicI32; THREAD_SLOTS_MAX] = [const { AtomicI32::new(0) }; THREAD_SLOTS_MAX];
static THREAD_DOING: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
/// When each checking thread's current window started (CLOCK_MONOTONIC ns, 0: not in one or
/// not timed): a fault's kernel timeline then starts there, as a mismatch's does.
static THREAD_WINDOW_START: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
/// Signals the handlers ran on each checking thread (by number).
static THREAD_SIGNALS: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
/// Windows each checking thread (by number) has begun.
static THREAD_WINDOWS: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];

/// One more than the highest checking-thread number registered: the handlers scan no further.
static THREAD_SLOTS: AtomicUsize = AtomicUsize::new(0);

/// The number of the checking thread with kernel thread id `tid`, if it is one (async-signal-safe).
fn checker_slot(tid: i32) -> Option<usize> {
    (0..THREAD_SLOTS.load(Ordering::Acquire)).find(|&i| THREAD_TIDS[i].load(Ordering::Relaxed) == tid)
}

/// How many signals regtorture's handlers ran on checking thread `n` so far.
pub fn thread_signals(n: u32) -> u64 {
    slot(n).map_or(0, |i| THREAD_SIGNALS[i].load(Ordering::Acquire))
}

/// Count a handled signal for the checking thread that is the calling thread, if it is one.
fn count_thread_signal() -> Option<usize> {
    let i = checker_slot(gettid())?;
    THREAD_SIGNALS[i].fetch_add(1, Ordering::AcqRel);
    Some(i)
}

/// Say that checking thread `n` is the calling thread. While a trace records (the only time
/// window starts and ends are published), its timeline, for a fault before its first window
/// (its triggers' start makes system calls, on whose exits the kernel acts as on a window's),
/// starts here.
/// A number without a slot ([`slot`]) is not registered: false.
pub fn register_thread(n: u32) -> bool {
    let Some(i) = slot(n) else { return false };
    THREAD_DOING[i].store(0, Ordering::Relaxed);
    let since = if tracing() { monotonic_ns() | OUTSIDE } else { 0 };
    THREAD_WINDOW_START[i].store(since, Ordering::Relaxed);
    THREAD_TIDS[i].store(gettid(), Ordering::Release);
    THREAD_SLOTS.fetch_max(i + 1, Ordering::AcqRel);
    true
}

/// Say that checking thread `n` begins a window.
#[inline]
pub fn window_begun(n: u32) {
    if let Some(i) = slot(n) {
        THREAD_WINDOWS[i].fetch_add(1, Ordering::Relaxed);
        restart_window_timer(i);
    }
}

/// The number of the checking thread with kernel thread id `tid`, if it is one, and how many
/// windows that number's threads have begun (the count goes on across the fresh threads of a
/// slot).
pub fn windows_begun(tid: i32) -> Option<(usize, u64)> {
    checker_slot(tid).map(|i| (i, THREAD_WINDOWS[i].load(Ordering::Relaxed)))
}

/// Say what checking thread `n` is doing now (copied into its fault record: `RawFault::doing`).
#[inline]
pub fn set_doing(n: u32, what: u64) {
    if let Some(i) = slot(n) {
        THREAD_DOING[i].store(what, Ordering::Relaxed);
    }
}

/// Say that checking thread `n`'s current window started at `ns`.
#[inline]
pub fn set_window_start(n: u32, ns: u64) {
    if let Some(i) = slot(n) {
        THREAD_WINDOW_START[i].store(ns & !OUTSIDE, Ordering::Relaxed);
    }
}

/// Say that checking thread `n`'s window ended at `ns`: a fault until the next one starts is
/// outside a window, and its timeline starts there.
#[inline]
pub fn set_window_end(n: u32, ns: u64) {
    if let Some(i) = slot(n) {
        THREAD_WINDOW_START[i].store(ns | OUTSIDE, Ordering::Relaxed);
    }
}

/// Faults so far, recovered or not.
pub fn fault_count() -> u64 {
    FAULT_TOTAL.load(Ordering::Acquire)
}

/// Whether a fault happened that a thread could not survive.
pub fn fatal_fault() -> bool {
    FATAL.load(Ordering::Acquire)
}

/// The faults recorded so far, in order.
pub fn faults() -> Vec<RawFault> {
    let n = FAULT_NEXT.load(Ordering::Acquire).min(FAULT_SLOTS);
    (0..n)
        .filter(|&i| FAULT_READY[i].load(Ordering::Acquire))
        .map(|i| {
            let w = |k: usize| FAULT_DATA[i][k].load(Ordering::Relaxed);
            let nregs = (w(rec::NREGS) as usize).min(FAULT_REGS_MAX);
            let (checker, window) = (w(rec::CHECKER), w(rec::WINDOW));
            RawFault {
                signo: w(rec::SIGNO) as i32,
                code: w(rec::CODE) as i32,
                addr: w(rec::ADDR),
                tid: w(rec::TID) as i32,
                recovered: w(rec::RECOVERED) & 1 != 0,
                when_ns: w(rec::WHEN_NS),
                regs: (0..nregs).map(|r| w(HEAD + r)).collect(),
                lost_signal: (w(rec::LOST) != 0).then(|| (w(rec::LOST + 1), w(rec::LOST + 2), w(rec::LOST + 3))),
                checker: (checker != 0).then(|| ((checker >> 48) as u32 - 1, checker & 0xffff_ffff_ffff)),
                window_start_ns: (window != 0 && window & OUTSIDE == 0).then_some(window),
                outside_since_ns: (window & OUTSIDE != 0).then_some(window & !OUTSIDE),
            }
        })
        .collect()
}

/// Forget recorded faults (between the selftest and a run, and in tests).
pub fn clear_faults() {
    FAULT_READY.iter().for_each(|r| r.store(false, Ordering::Release));
    FAULT_NEXT.store(0, Ordering::Release);
    FAULT_TOTAL.store(0, Ordering::Release);
    FATAL.store(false, Ordering::Release);
}

/// CLOCK_MONOTONIC in nanoseconds (async-signal-safe).
pub fn monotonic_ns() -> u64 {
    // SAFETY: clock_gettime writes only `ts`; it is async-signal-safe.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
}

/// Read `buf.len()` bytes of this process's memory at `addr` without faulting: a bad address
/// gives an error (process_vm_readv checks it), so a signal handler may look at a stack that a
/// kernel bug may have left pointing anywhere.
pub fn read_own_memory(addr: usize, buf: &mut [u8]) -> bool {
    let local = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: the kernel writes at most buf.len() bytes into `buf` and reads the remote range
    // with its own checks; both iovecs live across the call.
    let r = unsafe { libc::process_vm_readv(getpid(), &local, 1, &remote, 1, 0) };
    r == buf.len() as isize
}

extern "C" fn on_fault(sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // The time of the fault, before the handler's own work (slow under emulation) adds to it;
    // and the kernel's events that led here stay in the trace.
    let when = monotonic_ns();
    freeze_trace();
    let slot = FAULT_NEXT.fetch_add(1, Ordering::AcqRel);
    let mut regs = [0u64; FAULT_REGS_MAX];
    // SAFETY: `uc` is this handler's own frame; the backend copies registers out of it.
    let n = unsafe { super::native().fault_regs(uc, &mut regs) };
    // SAFETY: as above; the backend changes the frame only when it knows how to finish the
    // interrupted signal delivery (and reads other memory only through read_own_memory).
    let (recovered, lost) = unsafe { super::native().recover(uc) };
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as u64) };
    if slot < FAULT_SLOTS {
        let d = &FAULT_DATA[slot];
        let put = |k: usize, v: u64| d[k].store(v, Ordering::Relaxed);
        put(rec::SIGNO, sig as u64);
        put(rec::CODE, code as u64);
        put(rec::ADDR, addr);
        put(rec::TID, gettid() as u64);
        put(rec::RECOVERED, recovered as u64);
        put(rec::WHEN_NS, when);
        put(rec::NREGS, n as u64);
        let lost = lost.map_or([0; 4], |(s, t, p)| [1, s, t, p]);
        lost.iter().enumerate().for_each(|(k, v)| put(rec::LOST + k, *v));
        regs[..n].iter().enumerate().for_each(|(k, v)| put(HEAD + k, *v));
        let checker = checker_slot(gettid());
        put(rec::CHECKER, checker.map_or(0, |i| ((i as u64 + 1) << 48) | (THREAD_DOING[i].load(Ordering::Relaxed) & 0xffff_ffff_ffff)));
        put(rec::WINDOW, checker.map_or(0, |i| THREAD_WINDOW_START[i].load(Ordering::Relaxed)));
        FAULT_READY[slot].store(true, Ordering::Release);
    }
    FAULT_TOTAL.fetch_add(1, Ordering::AcqRel);
    if recovered {
        return;
    }
    FATAL.store(true, Ordering::Release);
    if !MONITORED.load(Ordering::Acquire) || gettid() == getpid() {
        // Nobody else will report: say what is known, in the only way left, and end.
        last_words(sig, addr, &regs[..n]);
    }
    // A run's monitor reports and ends the process; this thread must not go back to the
    // instruction that faulted.
    loop {
        // SAFETY: pause has no preconditions and is async-signal-safe.
        unsafe { libc::pause() };
    }
}

/// Write a fault's registers to standard error with write(2) and end the process (as init of
/// a VM: restart the machine, so that the host reads the lines and init never exits).
fn last_words(sig: i32, addr: u64, regs: &[u64]) -> ! {
    let mut buf = [0u8; 2048];
    let mut len = 0;
    let mut put = |b: &[u8]| {
        let n = b.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&b[..n]);
        len += n;
    };
    put(b"\nREGTORTURE-VM: error regtorture: CORRUPTION: fatal signal ");
    put(&hex(sig as u64));
    put(b" at address ");
    put(&hex(addr));
    put(b" in thread ");
    put(&hex(gettid() as u64));
    put(b"; registers:");
    for (i, r) in regs.iter().enumerate() {
        put(b" ");
        put(super::native().fault_layout().0.get(i).map_or(b"?".as_slice(), |n| n.as_bytes()));
        put(b"=");
        put(&hex(*r));
    }
    put(b"\n");
    // SAFETY: write and _exit are async-signal-safe; reboot only acts for init of a VM.
    unsafe {
        libc::write(2, buf.as_ptr() as *const libc::c_void, len);
        if getpid() == 1 {
            libc::sync();
            libc::reboot(libc::RB_AUTOBOOT);
        }
        libc::_exit(crate::error::EXIT_CORRUPTION);
    }
}

/// `0x...` of `v`, without allocating.
fn hex(v: u64) -> [u8; 18] {
    let mut out = [b'0'; 18];
    out[1] = b'x';
    for i in 0..16 {
        out[17 - i] = b"0123456789abcdef"[((v >> (4 * i)) & 15) as usize];
    }
    out
}

/// Install the fault handlers (once per process; idempotent) and this thread's alternate
/// signal stack. Every thread regtorture starts calls [`AltStack::new`] too: a fault on a
/// corrupted stack pointer must still reach the handler.
pub fn install_fault_handlers() -> io::Result<()> {
    if let Some((img, base)) = vdso_image() {
        let (start, ret) = super::native().signal_trampoline(img, base);
        SIGNAL_TRAMPOLINE.store(start, Ordering::Release);
        SIGRETURN_TRAMPOLINE.store(ret, Ordering::Release);
    }
    for sig in FAULT_SIGNALS {
        sigaction(sig, on_fault as *const () as usize, libc::SA_SIGINFO | libc::SA_ONSTACK)?;
    }
    Ok(())
}

/// Fault forensics for the calling thread from here on: the process's fault handlers
/// (idempotent) and an alternate signal stack for this thread, kept while the value lives.
/// The binary calls it first thing (the main thread, and init of a VM before it mounts
/// anything), and so does every thread regtorture starts outside a run (the selftest's): a
/// kernel bug that corrupts registers can strike in any phase, and a fault there must give a
/// report, not a silent death (with no run's monitor, the handler writes the registers to
/// standard error and ends the process; a VM's init restarts the machine after that).
pub fn protect_thread() -> io::Result<AltStack> {
    install_fault_handlers()?;
    AltStack::new()
}

/// This process's vDSO image (its bytes, and the address they start at), from AT_SYSINFO_EHDR
/// and the extent of the `[vdso]` mapping.
pub fn vdso_image() -> Option<(&'static [u8], usize)> {
    // SAFETY: getauxval has no preconditions.
    let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    if base == 0 {
        return None;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let end = maps.lines().find_map(|l| {
        let range = l.split_whitespace().next()?;
        let (a, b) = range.split_once('-')?;
        let (a, b) = (usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?);
        (a == base).then_some(b)
    })?;
    // SAFETY: the kernel maps the vDSO image readable at AT_SYSINFO_EHDR for the whole life of
    // the process, up to the end of that mapping, and nothing writes to it.
    Some((unsafe { std::slice::from_raw_parts(base as *const u8, end - base) }, base))
}

/// An alternate signal stack for the calling thread, given back when dropped (the thread's
/// previous one, if any, is put back).
pub struct AltStack {
    base: *mut libc::c_void,
    old: libc::stack_t,
}

impl AltStack {
    const SIZE: usize = 256 * 1024;

    pub fn new() -> io::Result<AltStack> {
        // SAFETY: a fresh private mapping owned by the returned value; sigaltstack copies the
        // descriptor and keeps the previous one in `old`.
        unsafe {
            let base = libc::mmap(std::ptr::null_mut(), Self::SIZE, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let st = libc::stack_t { ss_sp: base, ss_flags: 0, ss_size: Self::SIZE };
            let mut old: libc::stack_t = std::mem::zeroed();
            if libc::sigaltstack(&st, &mut old) != 0 {
                let e = io::Error::last_os_error();
                libc::munmap(base, Self::SIZE);
                return Err(e);
            }
            Ok(AltStack { base, old })
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: this thread is not on the alternate stack here (drop runs in normal context);
        // the old descriptor is put back before the mapping goes.
        unsafe {
            let old = if self.old.ss_flags & libc::SS_DISABLE != 0 || self.old.ss_sp.is_null() {
                libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 }
            } else {
                self.old
            };
            libc::sigaltstack(&old, std::ptr::null_mut());
            libc::munmap(self.base, Self::SIZE);
        }
    }
}

/// Start `/proc/self/exe` with `args` in a child that first loads every class of `values` with
/// them (the backend's clobber routines) and then calls execve directly, so that the new image
/// starts where the registers held those values. Returns the child's pid and the read end of a
/// pipe that is its standard output. The caller reaps the child ([`reap`]).
///
/// With `plant` (byte offset, value), the positive control of the execve check: the child is
/// traced (`PTRACE_TRACEME`), so the kernel stops the new image with SIGTRAP before its first
/// instruction; the 64-bit word at that offset of its `NT_PRFPREG` register set is made
/// `value` (`PTRACE_SETREGSET`) and the child is let go (`PTRACE_DETACH`): the entry stub must
/// then see the value, as it would a leak. Must be called from the thread that later reaps:
/// ptrace answers only the tracer, the thread that forked.
pub fn exec_with_registers(values: &[(ClassId, Vec<u64>)], args: &[&str], plant: Option<(usize, u64)>) -> io::Result<(i32, std::fs::File)> {
    use std::ffi::CString;
    use std::os::fd::FromRawFd;
    let path = CString::new("/proc/self/exe").expect("no NUL");
    let argv: Vec<CString> = args.iter().map(|a| CString::new(*a).map_err(|_| io::Error::other("an argument holds NUL"))).collect::<io::Result<_>>()?;
    let mut argp: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    zero_ok(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: fork; the child only calls dup2, the clobber routines and execve (async-signal-safe:
    // no allocation, no locks), and _exit if execve fails.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child. dup2 makes the pipe its stdout (without O_CLOEXEC). The clobber
        // routines load each enabled class from a buffer long enough (checked by `clobber`) and
        // change callee-saved vector state: nothing after them but the execve call uses it, and
        // execve replaces the whole image. `path`, `argp` and `environ` are valid C arrays.
        unsafe {
            libc::dup2(fds[1], 1);
            if plant.is_some() && libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                libc::_exit(126);
            }
            for (class, v) in values {
                super::native().clobber(*class, v);
            }
            libc::syscall(libc::SYS_execve, path.as_ptr(), argp.as_ptr(), environ);
            libc::_exit(127);
        }
    }
    // SAFETY: the write end is the child's now; close ours. The read end is ours to own.
    unsafe { libc::close(fds[1]) };
    if pid < 0 {
        // SAFETY: fds[0] is open and ours.
        unsafe { libc::close(fds[0]) };
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fds[0] is an open descriptor nobody else owns.
    let out = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    if let Some((offset, value)) = plant {
        if let Err(e) = plant_at_exec_stop(pid, offset, value) {
            // SAFETY: kill only sends a signal to our own child; reap collects it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = reap(pid as i64, std::time::Duration::from_secs(5));
            return Err(e);
        }
    }
    Ok((pid, out))
}

/// `NT_PRFPREG` (elf.h): the floating-point register set of PTRACE_GETREGSET.
const NT_PRFPREG: libc::c_int = 2;

/// Wait for traced child `pid` to stop at its execve, write `value` at byte `offset` of its
/// `NT_PRFPREG` set, and detach (the SIGTRAP of the stop is not passed on).
fn plant_at_exec_stop(pid: i32, offset: usize, value: u64) -> io::Result<()> {
    let mut status = 0;
    // SAFETY: waitpid writes only `status`; __WALL waits for a child whoever its exit signal.
    let r = loop {
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break r;
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if libc::WIFEXITED(status) {
        return Err(io::Error::other(match libc::WEXITSTATUS(status) {
            126 => "PTRACE_TRACEME was refused (a seccomp filter or LSM that forbids ptrace?)".to_string(),
            127 => "execve of /proc/self/exe failed".to_string(),
            c => format!("the traced child exited with {c} before its exec stop"),
        }));
    }
    if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGTRAP {
        return Err(io::Error::other(format!("the traced child did not stop at its execve (wait status {status:#x})")));
    }
    let mut image = [0u8; 4096];
    let mut iov = libc::iovec { iov_base: image.as_mut_ptr() as *mut libc::c_void, iov_len: image.len() };
    // SAFETY: `pid` is our stopped tracee; GETREGSET writes at most iov_len bytes into `image`
    // and sets iov_len to what it wrote.
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_GETREGSET, pid, NT_PRFPREG, &mut iov as *mut libc::iovec) })?;
    if offset + 8 > iov.iov_len {
        return Err(io::Error::other(format!("NT_PRFPREG has {} bytes, no word at {offset}", iov.iov_len)));
    }
    image[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    // SAFETY: as above; SETREGSET reads iov_len bytes of `image`, the set as GETREGSET gave it.
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_SETREGSET, pid, NT_PRFPREG, &mut iov as *mut libc::iovec) })?;
    // SAFETY: detaching our stopped tracee; signal 0: the exec stop's SIGTRAP is dropped.
    if unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process was started without a program interpreter (AT_BASE is zero): a static
/// binary, whose entry point is the first user instruction after execve.
pub fn started_static() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_BASE) == 0 }
}

/// Make `cmd`'s child die when this process does (PR_SET_PDEATHSIG SIGKILL), so that no process
/// regtorture starts outlives it.
pub fn die_with_parent(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and makes one
    // async-signal-safe system call.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Ask process `pid` (a child of ours) to stop: SIGTERM, which ends a run with its report.
pub fn terminate(pid: i32) {
    // SAFETY: kill only sends a signal.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checking-thread number past the tables has no slot: it is refused, never folded onto
    /// another thread's slot (the tables were once indexed `n & 1023`, so thread 1029 wrote
    /// thread 5's).
    #[test]
    fn a_thread_number_past_the_tables_is_refused_not_folded() {
        assert_eq!(slot(5), Some(5));
        assert_eq!(slot(THREAD_SLOTS_MAX as u32 - 1), Some(THREAD_SLOTS_MAX - 1));
        assert_eq!(slot(THREAD_SLOTS_MAX as u32 + 5), None);
        let here = std::thread::spawn(|| {
            let refused = !register_thread(THREAD_SLOTS_MAX as u32 + 5);
            (refused, windows_begun(gettid()))
        })
        .join()
        .unwrap();
        assert_eq!(here, (true, None), "the refused thread is no checking thread");
        set_doing(THREAD_SLOTS_MAX as u32 + 5, 7);
        assert_ne!(THREAD_DOING[5].load(Ordering::Relaxed), 7);
    }
}
