//! Per-checking-thread tables the handlers read: thread ids, what each thread is doing, window
//! starts, signal and window counts.

use super::*;

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
pub(super) static THREAD_DOING: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
/// When each checking thread's current window started (CLOCK_MONOTONIC ns, 0: not in one or
/// not timed): a fault's kernel timeline then starts there, as a mismatch's does.
pub(super) static THREAD_WINDOW_START: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
/// Signals the handlers ran on each checking thread (by number).
pub(super) static THREAD_SIGNALS: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
/// Windows each checking thread (by number) has begun.
pub(super) static THREAD_WINDOWS: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];

/// The state a signal handler found at its entry on each checking thread, when it was not the
/// rule's (the backend's [`crate::arch::Backend::handler_entry_state`]: aarch64's SVCR and
/// TPIDR2, both 0 by sme.rst "Signal handling"): the two words of the last such entry, and how
/// many entries were wrong since the checker last took them.
pub(super) static HANDLER_ENTRY_WRONG: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
pub(super) static HANDLER_ENTRY_STATE: [[AtomicU64; 2]; THREAD_SLOTS_MAX] = [const { [const { AtomicU64::new(0) }; 2] }; THREAD_SLOTS_MAX];

/// What checking thread `n`'s handlers found wrong at their entry since the last call: (how
/// many entries, the last one's two words).
pub fn take_handler_entry(n: u32) -> Option<(u64, [u64; 2])> {
    let i = slot(n)?;
    let wrong = HANDLER_ENTRY_WRONG[i].swap(0, Ordering::AcqRel);
    (wrong > 0).then(|| (wrong, [HANDLER_ENTRY_STATE[i][0].load(Ordering::Relaxed), HANDLER_ENTRY_STATE[i][1].load(Ordering::Relaxed)]))
}

/// One more than the highest checking-thread number registered: the handlers scan no further.
static THREAD_SLOTS: AtomicUsize = AtomicUsize::new(0);

/// The number of the checking thread with kernel thread id `tid`, if it is one (async-signal-safe).
pub(super) fn checker_slot(tid: i32) -> Option<usize> {
    (0..THREAD_SLOTS.load(Ordering::Acquire)).find(|&i| THREAD_TIDS[i].load(Ordering::Relaxed) == tid)
}

/// How many signals regtorture's handlers ran on checking thread `n` so far.
pub fn thread_signals(n: u32) -> u64 {
    slot(n).map_or(0, |i| THREAD_SIGNALS[i].load(Ordering::Acquire))
}

/// Count a handled signal for the checking thread that is the calling thread, if it is one.
pub(super) fn count_thread_signal() -> Option<usize> {
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

/// Say that checking thread `n` begins a window; returns that window's number (windows
/// begun by its slot; 0 for a number without a slot), which frame rewrites are tagged with.
#[inline]
pub fn window_begun(n: u32) -> u64 {
    let Some(i) = slot(n) else { return 0 };
    let number = THREAD_WINDOWS[i].fetch_add(1, Ordering::Relaxed) + 1;
    restart_window_timer(i);
    number
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
