//! Signal handlers: the clobbering handler, the fault injector's hand-off, and stop requests
//! (SIGINT, SIGTERM).

use super::*;

/// Class bits ([`ClassId::code`]) the clobbering handler overwrites.
static CLOBBER_MASK: AtomicU32 = AtomicU32::new(0);
/// The values the clobbering handler loads: a leaked `Vec<(ClassId, Vec<u64>)>`.
static CLOBBER_VALUES: AtomicPtr<Vec<(ClassId, Vec<u64>)>> = AtomicPtr::new(std::ptr::null_mut());
/// How many times the clobbering handler ran, per signal (index: signal - SIGRTMIN).
pub(super) static SIG_COUNTS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

pub(super) fn sigaction(sig: i32, handler: usize, flags: i32) -> io::Result<()> {
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
    // First, before anything here changes it: the state the kernel entered the handler with.
    let entry = crate::arch::native().handler_entry_state();
    SIG_COUNTS[((sig - libc::SIGRTMIN()) & 7) as usize].fetch_add(1, Ordering::Relaxed);
    if let Some(slot) = count_thread_signal() {
        if let Some(e) = entry.filter(|e| *e != [0, 0]) {
            HANDLER_ENTRY_STATE[slot][0].store(e[0], Ordering::Relaxed);
            HANDLER_ENTRY_STATE[slot][1].store(e[1], Ordering::Relaxed);
            HANDLER_ENTRY_WRONG[slot].fetch_add(1, Ordering::AcqRel);
        }
        window_timer_fired(sig, slot);
        // SAFETY: `uc` is this handler's frame, on checking thread `slot`.
        unsafe { rewrite_frame(slot, sig, uc) };
    }
    // SAFETY: `uc` is this handler's frame; the backend reads the instruction before the PC
    // only when the PC lies in one of its own windows.
    if unsafe { crate::arch::at_syscall_exit(uc) } {
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
            unsafe { crate::arch::native().clobber(*class, v) };
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
    let Some(pc) = crate::arch::after_first_syscall(fault.class) else {
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
    let (begin, end) = crate::arch::native().live_range(class);
    // SAFETY: `uc` is this handler's own frame.
    let pc = unsafe { crate::arch::native().frame_pc(uc) };
    let begin = begin.max(REQ.from_pc.load(Ordering::Relaxed));
    let state = if !(begin..end).contains(&pc) {
        Inject::Missed
    // SAFETY: as above.
    } else if unsafe {
        match REQ.mode.load(Ordering::Relaxed) {
            m if m == Mode::Replay as u32 => crate::arch::native().replay_known_bug(uc, class),
            m if m == Mode::Misreturn as u32 => crate::arch::native().misreturn(uc),
            _ => crate::arch::native().inject(uc, &fault),
        }
    } {
        REQ.iteration.store(CURRENT_ITERATION.load(Ordering::Acquire), Ordering::Release);
        Inject::Landed
    } else {
        Inject::Failed
    };
    REQ.state.store(state as u32, Ordering::Release);
}

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
