//! What the triggers call: per-thread timers, membarrier, TLB churn, affinity and context-switch
//! counts.

use super::*;

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
pub(super) fn window_timer_fired(sig: i32, slot: usize) {
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
pub(super) fn restart_window_timer(n: usize) {
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
