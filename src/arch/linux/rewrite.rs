//! Frame rewrites: for one in [`REWRITE_EVERY`] signals the clobbering handler takes on a
//! checking thread inside a window, it also writes a new generation of that window's class
//! into the signal frame, as a program whose handler edits its `ucontext` does (a JIT, a
//! user-space scheduler, a sanitizer). sigreturn must deliver exactly the frame's values.
//!
//! The new value of each lane is the old one with its writer's identity changed (the low half
//! of a pattern word names thread, class, register and lane: XOR-ing the checking thread's and
//! [`crate::pattern::REWRITE_THREAD`]'s low halves makes it that writer's value of the same
//! lane and iteration). The checking thread gives the handler its table of those masks
//! ([`set_rewrite_table`]) and, after each window, takes what the handler rewrote in it
//! ([`take_rewrite`]): the lanes the frame had an image of (the backend's `inject`, the same
//! code the fault injector uses, so every frame format and XSAVE component is covered).

use super::*;

/// One in this many of a checking thread's clobbering-handler runs rewrites the frame.
pub const REWRITE_EVERY: u64 = 4;
/// Words of the rewrite bitmap: the largest class buffer rewritten, in 64-word units.
const BITMAP_WORDS: usize = 48;

/// (word, register, lane, mask) of one lane a rewrite changes.
pub type RewriteLane = (usize, usize, usize, u64);

/// A checking thread's rewrite masks: per class, its lanes, and whether every window kind
/// keeps all of the class (the control plants there, and in windows without a system call).
pub struct RewriteTable {
    pub classes: Vec<(ClassId, Vec<RewriteLane>, bool)>,
}

/// The control (`rewrite-control`): each rewrite also records one rewritten lane one bit off.
static PLANT: AtomicBool = AtomicBool::new(false);
/// Per thread: the planted (word << 6 | bit) + 1 of its last rewrite, 0 for none.
static PLANTED_AT: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
/// Per class (`ClassId as usize`): wrong lanes the control planted in that class's windows.
static PLANTED_BY_CLASS: [AtomicU64; ClassId::ALL.len()] = [const { AtomicU64::new(0) }; ClassId::ALL.len()];

/// Turn the rewrite control on or off.
pub fn set_rewrite_plant(on: bool) {
    // Counts start with each control's run.
    if on {
        PLANTED_BY_CLASS.iter().for_each(|c| c.store(0, Ordering::Relaxed));
    }
    PLANT.store(on, Ordering::Release);
}

/// Wrong lanes the control planted so far.
pub fn rewrite_plants() -> u64 {
    PLANTED_BY_CLASS.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}

/// Wrong lanes the control planted so far in windows of `class`.
pub fn rewrite_plants_of(class: ClassId) -> u64 {
    PLANTED_BY_CLASS.get(class as usize).map_or(0, |c| c.load(Ordering::Relaxed))
}

static TABLES: [AtomicPtr<RewriteTable>; THREAD_SLOTS_MAX] = [const { AtomicPtr::new(std::ptr::null_mut()) }; THREAD_SLOTS_MAX];
/// The window number (see `THREAD_WINDOWS`) of each thread's last rewrite, and its class.
static REWRITE_AT: [AtomicU64; THREAD_SLOTS_MAX] = [const { AtomicU64::new(0) }; THREAD_SLOTS_MAX];
static REWRITE_CLASS: [AtomicU32; THREAD_SLOTS_MAX] = [const { AtomicU32::new(0) }; THREAD_SLOTS_MAX];
/// Per thread: whether its current window makes no system call, so that its integer registers
/// are the class's all through (set by the thread before each window).
static NO_SYSCALL: [AtomicBool; THREAD_SLOTS_MAX] = [const { AtomicBool::new(false) }; THREAD_SLOTS_MAX];

/// Say whether checking thread `n`'s next window makes no system call (only then may its
/// integer registers be rewritten: in a window with one they are the call's number, arguments
/// and result for a while after it, measured on powerpc64 where `sc`'s result is turned into
/// -errno before it is stored).
#[inline]
pub fn set_rewrite_window(n: u32, no_syscall: bool) {
    if let Some(i) = slot(n) {
        NO_SYSCALL[i].store(no_syscall, Ordering::Relaxed);
    }
}
static REWRITE_BITS: [[AtomicU64; BITMAP_WORDS]; THREAD_SLOTS_MAX] = [const { [const { AtomicU64::new(0) }; BITMAP_WORDS] }; THREAD_SLOTS_MAX];
/// Rewrites made, per signal (index: signal - SIGRTMIN).
static REWRITES: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

/// Give checking thread `n`'s handler its rewrite table (`None`: no rewrites). Call from that
/// thread: its handler is the only reader, so the old table is freed at once.
pub fn set_rewrite_table(n: u32, table: Option<RewriteTable>) {
    let Some(i) = slot(n) else { return };
    let table = table.filter(|t| t.classes.iter().all(|(_, l, _)| l.iter().all(|x| x.0 < BITMAP_WORDS * 64)));
    let new = table.map_or(std::ptr::null_mut(), |t| Box::into_raw(Box::new(t)));
    let old = TABLES[i].swap(new, Ordering::SeqCst);
    REWRITE_AT[i].store(0, Ordering::Relaxed);
    if !old.is_null() {
        // SAFETY: the pointer came from Box::into_raw above and is no longer in the table; the
        // only reader is this thread's own signal handler, which reads the table again after
        // the swap, so none holds the old one now.
        drop(unsafe { Box::from_raw(old) });
    }
}

/// What the handler rewrote in one window.
pub struct Rewrite {
    /// The class ([`ClassId::code`]).
    pub class: u32,
    /// The words of its buffer rewritten.
    pub words: Vec<usize>,
    /// The control's plant: (word, mask) of the lane it told wrong.
    pub plant: Option<(usize, u64)>,
}

/// What the handler rewrote in checking thread `n`'s window `window`, of a class buffer of
/// `words` words.
pub fn take_rewrite(n: u32, window: u64, words: usize) -> Option<Rewrite> {
    let i = slot(n)?;
    if window == 0 || REWRITE_AT[i].load(Ordering::Acquire) != window {
        return None;
    }
    REWRITE_AT[i].store(0, Ordering::Relaxed);
    let bit = |w: usize| REWRITE_BITS[i].get(w / 64).is_some_and(|b| b.load(Ordering::Relaxed) >> (w % 64) & 1 == 1);
    let plant = PLANTED_AT[i].swap(0, Ordering::Relaxed).checked_sub(1).map(|p| ((p >> 6) as usize, 1u64 << (p & 63)));
    Some(Rewrite { class: REWRITE_CLASS[i].load(Ordering::Relaxed), words: (0..words).filter(|&w| bit(w)).collect(), plant })
}

/// Frame rewrites made on signal `sig`'s deliveries.
pub fn frame_rewrites(sig: i32) -> u64 {
    REWRITES[((sig - libc::SIGRTMIN()) & 7) as usize].load(Ordering::Relaxed)
}

/// The clobbering handler's part: rewrite the frame when it is this thread's turn and it
/// stopped inside a window of a class in its table (once per window).
///
/// # Safety
/// `uc` must be the `ucontext_t` of the SA_SIGINFO handler running now on checking thread `i`.
pub(super) unsafe fn rewrite_frame(i: usize, sig: i32, uc: *mut libc::c_void) {
    let t = TABLES[i].load(Ordering::SeqCst);
    if t.is_null() || THREAD_SIGNALS[i].load(Ordering::Relaxed) % REWRITE_EVERY != 0 {
        return;
    }
    let window = THREAD_WINDOWS[i].load(Ordering::Relaxed);
    if REWRITE_AT[i].load(Ordering::Relaxed) == window {
        return;
    }
    // SAFETY: the pointer is this thread's live table (set_rewrite_table runs on this thread,
    // so it cannot free it while this handler runs).
    let t = unsafe { &*t };
    // SAFETY: the caller passes this handler's frame.
    let pc = unsafe { crate::arch::native().frame_pc(uc) };
    let Some((class, lanes, plantable)) = t.classes.iter().find(|(c, _, _)| {
        let (b, e) = crate::arch::native().live_range(*c);
        b <= pc && pc < e
    }) else {
        return;
    };
    // The integer registers of a frame at (or just past) a window's system call are the call's
    // number, arguments and result, and a restart would run the call with what the frame
    // holds: never rewritten there (measured: a rewritten rax was ppoll's result).
    if *class == ClassId::Gpr && (crate::arch::at_syscall_insn(pc) || !NO_SYSCALL[i].load(Ordering::Relaxed)) {
        return;
    }
    REWRITE_BITS[i].iter().for_each(|b| b.store(0, Ordering::Relaxed));
    let mut any = false;
    for &(w, reg, lane, mask) in lanes {
        // SAFETY: as above; inject writes only inside the frame's images.
        if unsafe { crate::arch::native().inject(uc, &Fault { class: *class, reg, lane, mask }) } {
            REWRITE_BITS[i][w / 64].fetch_or(1 << (w % 64), Ordering::Relaxed);
            any = true;
        }
    }
    PLANTED_AT[i].store(0, Ordering::Relaxed);
    // A window without a system call keeps every lane: the control plants there in any class
    // (the gpr class, which a syscall window keeps only in part, included).
    if any && (*plantable || NO_SYSCALL[i].load(Ordering::Relaxed)) && PLANT.load(Ordering::Acquire) {
        // One lane of the rewrite, told wrong by one bit: the window must report exactly it.
        let n = THREAD_SIGNALS[i].load(Ordering::Relaxed) / REWRITE_EVERY;
        let pick = lanes.iter().filter(|x| REWRITE_BITS[i][x.0 / 64].load(Ordering::Relaxed) >> (x.0 % 64) & 1 == 1).nth((n % lanes.len() as u64) as usize);
        if let Some(&(w, _, _, _)) = pick {
            PLANTED_AT[i].store((((w as u64) << 6) | ((n.wrapping_mul(0x9e37_79b9) >> 7) % 64)) + 1, Ordering::Relaxed);
            if let Some(c) = PLANTED_BY_CLASS.get(*class as usize) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if any {
        REWRITE_CLASS[i].store(class.code(), Ordering::Relaxed);
        REWRITE_AT[i].store(window, Ordering::Release);
        REWRITES[((sig - libc::SIGRTMIN()) & 7) as usize].fetch_add(1, Ordering::Relaxed);
    }
}
