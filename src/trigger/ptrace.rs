//! The kernel's other hands on a thread's registers: a tracer process seizes every checking
//! thread (`PTRACE_SEIZE`), stops them at random moments (`PTRACE_INTERRUPT`, which lands on an
//! interrupt or system-call exit, and every signal-delivery stop the signal triggers cause) and,
//! when a thread stopped inside a window's live range, reads one register set that shows the
//! window's class (`PTRACE_GETREGSET`: `NT_PRSTATUS`, `NT_PRFPREG`, `NT_X86_XSTATE`, as the
//! backend's `regsets` lists them).
//!
//! * **Views.** What the regset showed is handed to the checking thread (a [`Board`] of shared
//!   memory), which compares it after its window with the values its registers held: a lane the
//!   thread kept but the view showed otherwise is a finding of its own kind (the regset, byte
//!   offset, register and lane).
//! * **Writes.** At a third of those stops the tracer writes a new generation of the class's
//!   data lanes through that regset (`PTRACE_SETREGSET`): the values of the pattern's tracer
//!   thread ([`crate::pattern::TRACER_THREAD`]) for the window's iteration. When the thread
//!   goes on it must hold exactly them: a write that is lost, partial or misplaced is a
//!   mismatch of the window.
//! * **The control** (`ptrace-control`, on request, and the selftest's `ptrace-write` row): every
//!   write record names one lane with a wrong value (one bit flipped): the checking thread must
//!   report exactly that lane.
//!
//! The tracer is a process (ptrace refuses a thread of the same thread group) forked by the
//! trigger's aggressor thread; it dies with it (PR_SET_PDEATHSIG) and is killed and reaped when
//! the run stops, which detaches every thread it held.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{About, Trigger, TriggerCtx};
use crate::arch::{self, RegsetMap, linux};
use crate::class::ClassId;
use crate::pattern::{self, Template};
use crate::plan::Plan;
use crate::window::WindowKind;

/// Header words of the board.
const H_GO: usize = 0;
const H_STOPS: usize = 1;
const H_IN_WINDOW: usize = 2;
const H_VIEWS: usize = 3;
const H_WRITES: usize = 4;
const H_ERRORS: usize = 5;
const H_SEIZED: usize = 6;
/// Set by the run at its end: the tracer leaves at its next safe point (between stops). Then
/// how it ended: [`ENDED_BY_ITSELF`] or [`ENDED_KILLED`].
const H_QUIT: usize = 7;
const ENDED_BY_ITSELF: u64 = 2;
const ENDED_KILLED: u64 = 3;
/// How long the tracer gets to leave by itself before it is killed.
const QUIT_PATIENCE: Duration = Duration::from_secs(5);
const H_SIGNAL_STOPS: usize = 8;
const H_LAST_ERRNO: usize = 9;
/// Writes read back through another regset that shows the same lanes (x86_64: `NT_PRFPREG`
/// and `NT_X86_XSTATE`).
const H_CROSS: usize = 10;
/// Writes of a prefix of the regset (the ABI keeps the rest).
const H_PARTIAL: usize = 11;
/// System-call exit stops (`PTRACE_SYSCALL`).
const H_SYSCALL_STOPS: usize = 12;
/// Writes the kernel refused with EINVAL (the regset as read, with new lanes).
const H_REFUSED: usize = 13;
/// Per class of the plan, from this word: the control's plants in that class's windows.
const H_PLANTED_BY_CLASS: usize = 16;
const HEAD: usize = H_PLANTED_BY_CLASS + ClassId::ALL.len();

/// Words of a thread's slot: its tid, the iteration of the window it is in, then the record.
const S_TID: usize = 0;
const S_ITER: usize = 1;
/// The iteration the record belongs to (0: none); written last.
const S_REC: usize = 2;
/// kind bits | class index << 8 | regset index << 16 | stop << 24.
const S_META: usize = 3;
const S_PLANT_WORD: usize = 4;
const S_PLANT_MASK: usize = 5;
/// The kind of the window the thread is in (its index in `WindowKind::ALL`).
const S_KIND: usize = 6;
const S_DATA: usize = 8;

const KIND_WRITE: u64 = 1;
const KIND_PLANT: u64 = 2;
/// The view was read after the write (through the regset index the record names): what it
/// shows of a written lane must be what was written.
const KIND_READBACK: u64 = 4;

/// How long the tracer holds a thread, and how long it then leaves it untraced: a fifth of the
/// time traced (see `Tracer::let_go`).
const TRACED_NS: u64 = 20_000_000;
const UNTRACED_NS: u64 = 80_000_000;

/// The map among `maps` of the regset `maps[pick]` reads, that lays out `bytes` as they came:
/// `maps[pick]` itself, or another of the same note (arm64's `NT_ARM_SVE` has one per format).
fn layout_of(maps: &[RegsetMap], pick: usize, bytes: &[u8]) -> Option<usize> {
    let note = maps[pick].note;
    std::iter::once(pick).chain(0..maps.len()).find(|&i| maps[i].note == note && maps[i].describes(bytes))
}

/// How a thread was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// `PTRACE_INTERRUPT`.
    Interrupt,
    /// A signal-delivery stop.
    Signal,
    /// A system-call exit stop (`PTRACE_SYSCALL`).
    SyscallExit,
}

impl StopKind {
    /// Its code in a record's meta word (0 is no record's).
    fn code(self) -> u64 {
        match self {
            StopKind::Interrupt => 1,
            StopKind::Signal => 2,
            StopKind::SyscallExit => 3,
        }
    }

    fn from_code(code: u64) -> StopKind {
        [StopKind::Signal, StopKind::SyscallExit].into_iter().find(|k| k.code() == code).unwrap_or(StopKind::Interrupt)
    }

    pub fn name(self) -> &'static str {
        match self {
            StopKind::Interrupt => "interrupt",
            StopKind::Signal => "signal-delivery",
            StopKind::SyscallExit => "syscall-exit",
        }
    }
}

/// What the tracer saw and did at one stop inside a window of a thread.
pub struct Record {
    /// Index of the window's class in the plan's layouts.
    pub class: usize,
    /// Index of the regset the view was read through, in the board's maps of that class.
    pub regset: usize,
    /// Index of the regset the tracer wrote through (when it wrote).
    pub written_regset: usize,
    pub stop: StopKind,
    /// The class buffer as the regset showed it (words the regset shows; others 0).
    pub view: Vec<u64>,
    /// The values written (the words whose flag is set), when the tracer wrote.
    pub written: Option<(Vec<u64>, Vec<bool>)>,
    /// (word, mask): a wrong value the control recorded for a written word, by that mask.
    pub planted: Option<(usize, u64)>,
    /// The view was read after the write: written lanes must show what was written.
    pub readback: bool,
}

/// Memory shared between the checking threads and the tracer process: a header of counters,
/// then a slot per checking thread.
pub struct Board {
    mem: linux::SharedWords,
    stride: usize,
    words: usize,
    /// Per class of the plan: the regsets that show it.
    pub maps: Vec<Vec<RegsetMap>>,
    /// The plan's classes, in its order.
    classes: Vec<ClassId>,
}

impl Board {
    pub fn new(plan: &Plan) -> std::io::Result<Board> {
        let maps: Vec<Vec<RegsetMap>> = plan.layouts.iter().map(|l| arch::native().regsets(l)).collect();
        let words = plan.layouts.iter().map(|l| l.words).max().unwrap_or(0);
        let stride = S_DATA + 2 * words + words.div_ceil(64);
        let mem = linux::SharedWords::new(HEAD + stride * linux::THREAD_SLOTS_MAX)?;
        Ok(Board { mem, stride, words, maps, classes: plan.layouts.iter().map(|l| l.id).collect() })
    }

    fn slot(&self, thread: u32, word: usize) -> Option<&AtomicU64> {
        let s = linux::slot(thread)?;
        self.mem.get(HEAD + s * self.stride + word)
    }

    fn head(&self, word: usize) -> u64 {
        self.mem[word].load(Ordering::Relaxed)
    }

    fn bump(&self, word: usize) {
        self.mem[word].fetch_add(1, Ordering::Relaxed);
    }

    /// Checking thread `thread` (kernel id `tid`) runs now (0: it ended).
    pub fn attach(&self, thread: u32, tid: i32) {
        if let Some(w) = self.slot(thread, S_TID) {
            w.store(tid as u32 as u64, Ordering::Release);
        }
    }

    /// The thread is about to load its registers for iteration `it`, a window of `kind`.
    #[inline]
    pub fn begin(&self, thread: u32, it: u64, kind: WindowKind) {
        if let (Some(w), Some(k)) = (self.slot(thread, S_ITER), self.slot(thread, S_KIND)) {
            k.store(kind as u64, Ordering::Relaxed);
            w.store(it, Ordering::Relaxed);
        }
    }

    /// The tracer's record of the thread's window `it` of class `class`, if it stopped the
    /// thread inside it; taken (a record is read once).
    pub fn take(&self, thread: u32, it: u64, class: usize) -> Option<Record> {
        let rec = self.slot(thread, S_REC)?;
        if rec.load(Ordering::Acquire) != it {
            return None;
        }
        rec.store(0, Ordering::Relaxed);
        let w = |i: usize| self.slot(thread, i).map_or(0, |a| a.load(Ordering::Relaxed));
        let meta = w(S_META);
        if (meta >> 8 & 0xff) as usize != class {
            return None;
        }
        let view = (0..self.words).map(|i| w(S_DATA + i)).collect();
        let written = (meta & KIND_WRITE != 0).then(|| {
            let vals = (0..self.words).map(|i| w(S_DATA + self.words + i)).collect();
            let flags = (0..self.words).map(|i| w(S_DATA + 2 * self.words + i / 64) >> (i % 64) & 1 == 1).collect();
            (vals, flags)
        });
        Some(Record {
            class,
            regset: (meta >> 16 & 0xff) as usize,
            written_regset: (meta >> 32 & 0xff) as usize,
            stop: StopKind::from_code(meta >> 24 & 0xff),
            view,
            written,
            planted: (meta & KIND_PLANT != 0).then(|| (w(S_PLANT_WORD) as usize, w(S_PLANT_MASK))),
            readback: meta & KIND_READBACK != 0,
        })
    }
}

/// The `ptrace` trigger, and (`plant`) its positive control.
pub struct Ptrace {
    about: About,
    plant: bool,
    board: OnceLock<Option<Board>>,
}

pub(super) fn trigger() -> Ptrace {
    Ptrace {
        about: About::aggressor(
            "ptrace",
            "a tracer process stops the checking threads, checks what ptrace's register sets show and writes new values through them",
        ),
        plant: false,
        board: OnceLock::new(),
    }
}

pub(super) fn control() -> Ptrace {
    Ptrace {
        about: About::aggressor("ptrace-control", "positive control: the ptrace trigger, each of whose writes records one lane wrong, which must be reported"),
        plant: true,
        board: OnceLock::new(),
    }
}

/// Whether ptrace can run here, else why not.
pub fn available() -> Result<(), String> {
    if linux::user_mode_emulation() {
        return Err("ptrace of the emulated threads is not available under user-mode emulation (qemu-user)".into());
    }
    if linux::yama_scope() == Some(3) {
        return Err("Yama forbids ptrace on this system (kernel.yama.ptrace_scope = 3)".into());
    }
    Ok(())
}

impl Trigger for Ptrace {
    fn about(&self) -> About {
        self.about
    }
    fn available(&self) -> Result<(), String> {
        available()
    }
    fn board(&self, plan: &Plan) -> Option<&Board> {
        self.board.get_or_init(|| Board::new(plan).ok()).as_ref()
    }
    fn aggressor(&self, ctx: &TriggerCtx) {
        let Some(board) = self.board(ctx.plan) else { return };
        let mut tracer = Tracer::new(ctx.plan, board, self.plant);
        let pid = match linux::fork_process(|| tracer.run()) {
            Ok(pid) => pid,
            Err(e) => {
                board.mem[H_LAST_ERRNO].store(e.raw_os_error().unwrap_or(0) as u64, Ordering::Relaxed);
                return;
            }
        };
        if linux::allow_tracer(pid).is_ok() {
            board.mem[H_GO].store(1, Ordering::Release);
        }
        while !ctx.stopped() {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The tracer leaves by itself, between stops: its exit detaches every thread it holds.
        // A kill could land between a write and its record (`at_stop`), and the thread, let go
        // by the kill, would end its window holding values no record names: a false finding at
        // the end of a run (measured: 21 registers of one riscv64 window, in a selftest's
        // ptrace-write row, whose rounds end often). Killed only if it does not leave in time.
        board.mem[H_QUIT].store(1, Ordering::Release);
        let ended = match linux::reap(pid.into(), QUIT_PATIENCE) {
            Ok(_) => ENDED_BY_ITSELF,
            Err(_) => ENDED_KILLED,
        };
        board.mem[H_QUIT].store(ended, Ordering::Release);
    }
    fn events(&self) -> u64 {
        self.board.get().and_then(Option::as_ref).map_or(0, |b| b.head(H_STOPS))
    }
    fn details(&self, _elapsed: Duration, checker_seconds: f64) -> Vec<(String, f64)> {
        let Some(b) = self.board.get().and_then(Option::as_ref) else { return Vec::new() };
        let stops = b.head(H_STOPS) as f64;
        let mut out = vec![
            ("stops_per_s_per_thread".to_string(), stops / checker_seconds.max(1e-9)),
            ("share_in_window".to_string(), b.head(H_IN_WINDOW) as f64 / stops.max(1.0)),
            ("signal_stops".to_string(), b.head(H_SIGNAL_STOPS) as f64),
            ("syscall_exit_stops".to_string(), b.head(H_SYSCALL_STOPS) as f64),
            ("views".to_string(), b.head(H_VIEWS) as f64),
            ("writes".to_string(), b.head(H_WRITES) as f64),
            ("writes_read_through_another_regset".to_string(), b.head(H_CROSS) as f64),
            ("partial_writes".to_string(), b.head(H_PARTIAL) as f64),
            ("threads_seized".to_string(), b.head(H_SEIZED) as f64),
            ("writes_refused".to_string(), b.head(H_REFUSED) as f64),
            ("errors".to_string(), b.head(H_ERRORS) as f64),
            // 1: the tracer left between stops, as it must; 0: it was killed (or still runs).
            ("tracer_left_between_stops".to_string(), f64::from(u8::from(b.head(H_QUIT) == ENDED_BY_ITSELF))),
        ];
        if b.head(H_ERRORS) > 0 {
            out.push(("last_errno".to_string(), b.head(H_LAST_ERRNO) as f64));
        }
        if self.plant {
            let planted = |ci: usize| b.head(H_PLANTED_BY_CLASS + ci) as f64;
            out.push(("planted".to_string(), (0..b.classes.len()).map(planted).sum()));
            for (ci, c) in b.classes.iter().enumerate() {
                out.push((format!("planted.{c}"), planted(ci)));
            }
        }
        out
    }
}

/// The tracer's state, all of it made before the fork: the child allocates nothing.
struct Tracer<'a> {
    board: &'a Board,
    plant: bool,
    /// Per class: its live range.
    live: Vec<(usize, usize)>,
    /// Per class: which words are plain data (the only ones written).
    data: Vec<Vec<bool>>,
    /// Per class and window kind: which words the window keeps whole (the only ones the
    /// control plants a wrong value in: the ABI lets a syscall clobber the others).
    kept: Vec<Vec<Vec<bool>>>,
    /// Per class: the tracer thread's template, and a buffer for its values.
    templates: Vec<Template>,
    values: Vec<Vec<u64>>,
    pattern: pattern::Pattern,
    buf: Vec<u8>,
    /// Per slot: the tid seized (0: none).
    seized: Vec<i32>,
    /// Per slot: when (CLOCK_MONOTONIC ns) it was seized, or when it may be seized again.
    since: Vec<u64>,
    rng: u64,
}

impl<'a> Tracer<'a> {
    fn new(plan: &Plan, board: &'a Board, plant: bool) -> Tracer<'a> {
        let data = plan
            .layouts
            .iter()
            .map(|l| {
                let mut d = vec![false; l.words];
                l.data_lanes().for_each(|(w, _, _)| d[w] = true);
                // PKRU is written whole: a tracer's PKRU write that the kernel dropped went
                // unseen from 5.14 to 6.2 ("x86/fpu: Allow PKRU to be (once again) written by
                // ptrace").
                if l.id == crate::class::ClassId::Pkru {
                    d.iter_mut().for_each(|x| *x = true);
                }
                d
            })
            .collect();
        let kept = plan
            .layouts
            .iter()
            .map(|l| {
                WindowKind::ALL
                    .iter()
                    .map(|&k| arch::native().preserved(l.id, k).map_or_else(|| vec![true; l.words], |m| m.iter().map(|&x| x == u64::MAX).collect()))
                    .collect()
            })
            .collect();
        Tracer {
            board,
            kept,
            plant,
            live: plan.layouts.iter().map(|l| arch::native().live_range(l.id)).collect(),
            data,
            templates: plan.layouts.iter().map(|l| Template::new(&plan.pattern, l, pattern::TRACER_THREAD)).collect(),
            values: plan.layouts.iter().map(|l| vec![0; l.words]).collect(),
            pattern: plan.pattern,
            buf: vec![0; 1 << 16],
            seized: vec![0; linux::THREAD_SLOTS_MAX],
            since: vec![0; linux::THREAD_SLOTS_MAX],
            rng: plan.pattern.seed() ^ 0x7472_6163_6572,
        }
    }

    fn rnd(&mut self) -> u64 {
        self.rng = pattern::mix64(self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15));
        self.rng
    }

    fn error(&self, e: &std::io::Error) {
        self.board.bump(H_ERRORS);
        self.board.mem[H_LAST_ERRNO].store(e.raw_os_error().unwrap_or(0) as u64, Ordering::Relaxed);
    }

    /// The tracer's life: until it is killed.
    fn run(&mut self) -> i32 {
        while self.board.mem[H_GO].load(Ordering::Acquire) == 0 {
            if self.board.mem[H_QUIT].load(Ordering::Acquire) != 0 {
                return 0;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        loop {
            // Between stops: no write is without its record, so the tracer may leave.
            if self.board.mem[H_QUIT].load(Ordering::Acquire) != 0 {
                return 0;
            }
            self.seize_new();
            let live: usize = self.seized.iter().filter(|&&t| t != 0).count();
            if live == 0 {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            let pick = (self.rnd() % live as u64) as usize;
            let Some(target) = self.seized.iter().copied().filter(|&t| t != 0).nth(pick) else { continue };
            if linux::interrupt(target).is_err() {
                self.forget(target);
                continue;
            }
            // Every stop is handled until the target's own has come (or it is gone).
            loop {
                match linux::wait_stop() {
                    Ok(Some((tid, linux::Stop::Interrupt))) => {
                        self.at_stop(tid, StopKind::Interrupt);
                        self.let_go(tid);
                        if tid == target {
                            break;
                        }
                    }
                    Ok(Some((tid, linux::Stop::Signal(sig)))) => {
                        self.board.bump(H_SIGNAL_STOPS);
                        self.at_stop(tid, StopKind::Signal);
                        let _ = linux::resume(tid, sig);
                    }
                    // A thread let go with PTRACE_SYSCALL: its exit stop is looked at (a write
                    // there must survive the return to user space: arm64's 2025 fix of SVE
                    // state written through ptrace and lost at syscall return), its entry stop
                    // only passed on to the exit.
                    // A PTRACE_INTERRUPT of a thread in that mode is reported as its call's
                    // exit stop, not as an interrupt stop (ptrace(2)): for the target, this is
                    // the stop it waited for.
                    Ok(Some((tid, linux::Stop::Syscall))) => {
                        match linux::at_syscall_exit_stop(tid) {
                            Ok(true) => {
                                self.board.bump(H_SYSCALL_STOPS);
                                self.at_stop(tid, StopKind::SyscallExit);
                                if tid == target {
                                    self.let_go(tid);
                                } else {
                                    let _ = linux::resume(tid, 0);
                                }
                            }
                            Ok(false) => {
                                let _ = linux::resume_syscall(tid);
                            }
                            Err(e) => {
                                self.error(&e);
                                let _ = linux::resume(tid, 0);
                            }
                        }
                        if tid == target {
                            break;
                        }
                    }
                    Ok(Some((tid, linux::Stop::Gone))) => {
                        self.forget(tid);
                        if tid == target {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.error(&e);
                        break;
                    }
                }
            }
            // Let the threads run a while: about 1,000 stops a second at most.
            std::thread::sleep(Duration::from_micros(200 + self.rnd() % 1600));
        }
    }

    /// Resume a thread from its interrupt stop; one that has been traced for its share of
    /// time is detached until its turn comes again. Traced, every signal a thread gets is a
    /// stop the tracer must handle: the signal triggers would slow to the tracer's pace.
    fn let_go(&mut self, tid: i32) {
        let now = linux::monotonic_ns();
        match self.seized.iter().position(|&t| t == tid) {
            Some(s) if now.saturating_sub(self.since[s]) >= TRACED_NS && linux::detach(tid).is_ok() => {
                self.seized[s] = 0;
                self.since[s] = now + UNTRACED_NS;
            }
            // One in four: on to the thread's next system call's exit, a stop of its own.
            _ if self.rnd() % 4 == 0 => {
                let _ = linux::resume_syscall(tid);
            }
            _ => {
                let _ = linux::resume(tid, 0);
            }
        }
    }

    fn forget(&mut self, tid: i32) {
        self.seized.iter_mut().filter(|t| **t == tid).for_each(|t| *t = 0);
    }

    /// Seize the checking threads that started since the last look.
    fn seize_new(&mut self) {
        for s in 0..self.seized.len() {
            let Some(w) = self.board.slot(s as u32, S_TID) else { break };
            let tid = w.load(Ordering::Acquire) as u32 as i32;
            if tid != 0 && tid != self.seized[s] && (self.seized[s] != 0 || linux::monotonic_ns() >= self.since[s]) {
                match linux::seize(tid) {
                    Ok(()) => {
                        self.seized[s] = tid;
                        self.since[s] = linux::monotonic_ns();
                        self.board.bump(H_SEIZED);
                    }
                    // Gone already, or not a thread of ours any more.
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(e) => self.error(&e),
                }
            }
        }
    }

    /// One stop of thread `tid`: when it is inside a window's live range, read (and at some
    /// stops write) one regset of the window's class and leave the record in its slot.
    fn at_stop(&mut self, tid: i32, stop: StopKind) {
        self.board.bump(H_STOPS);
        let Some(s) = self.seized.iter().position(|&t| t == tid) else { return };
        let n = match linux::get_regset(tid, arch::NT_PRSTATUS, &mut self.buf) {
            Ok(n) => n,
            Err(e) => return self.error(&e),
        };
        let at = arch::native().prstatus_pc();
        if n < at + 8 {
            return;
        }
        let pc = u64::from_le_bytes(self.buf[at..at + 8].try_into().expect("8 bytes")) as usize;
        let Some(ci) = self.live.iter().position(|&(b, e)| b <= pc && pc < e) else { return };
        self.board.bump(H_IN_WINDOW);
        let board = self.board;
        let (Some(iter), Some(rec)) = (board.slot(s as u32, S_ITER), board.slot(s as u32, S_REC)) else { return };
        let it = iter.load(Ordering::Relaxed);
        let kind = board.slot(s as u32, S_KIND).map_or(0, |k| k.load(Ordering::Relaxed) as usize).min(WindowKind::ALL.len() - 1);
        let maps = &board.maps[ci];
        if it == 0 || rec.load(Ordering::Relaxed) == it || maps.is_empty() {
            return;
        }
        let pick = (self.rnd() % maps.len() as u64) as usize;
        let n = match linux::get_regset(tid, maps[pick].note, &mut self.buf) {
            Ok(n) => n,
            Err(e) => return self.error(&e),
        };
        // The layout the kernel chose for this read (arm64's NT_ARM_SVE: FPSIMD or SVE).
        let Some(mut ri) = layout_of(maps, pick, &self.buf[..n]) else { return };
        let wi = ri;
        let map = &maps[ri];
        let put = |i: usize, v: u64| {
            if let Some(a) = board.slot(s as u32, S_DATA + i) {
                a.store(v, Ordering::Relaxed);
            }
        };
        for &(w, o, width) in &map.words {
            let mut b = [0u8; 8];
            b[..width].copy_from_slice(&self.buf[o..o + width]);
            put(w, u64::from_le_bytes(b));
        }
        board.bump(H_VIEWS);
        // The integer registers of a thread stopped in a system call are the call's (its number,
        // arguments, restart): no write there. (arm64 rewinds the PC onto the svc and puts the
        // first argument back before it stops: a write there made ppoll run as call -1, ENOSYS.)
        let in_syscall = map.note == arch::NT_PRSTATUS && arch::at_syscall_insn(pc);
        let mut rec_kind = 0;
        if (self.plant || self.rnd() % 3 == 0) && !in_syscall {
            self.templates[ci].fill(&self.pattern, it, &mut self.values[ci]);
            let words = board.words;
            let flags = S_DATA + 2 * words;
            for i in 0..words.div_ceil(64) {
                put(flags - S_DATA + i, 0);
            }
            let (r, r2, r3) = (self.rnd(), self.rnd(), self.rnd());
            let kept = &self.kept[ci][kind];
            let data = &self.data[ci];
            // Half the writes to a regset that takes a prefix are partial: cut after a random
            // written lane, the kernel keeps what follows (and the thread's values there). (No
            // allocation here: this is a child forked from a threaded process.)
            let written = |&&(w, _, _): &&(usize, usize, usize)| data[w] && kept[w];
            let k = map.words.iter().filter(written).count() as u64;
            // The length must be a multiple of the regset's element size (`ptrace_regset`:
            // -EINVAL otherwise; measured on powerpc's NT_PPC_VMX, whose elements are 16 bytes):
            // 16 is one of every regset written partially.
            let cut = match map.words.iter().filter(written).nth((r2 % k.max(1)) as usize) {
                Some(&(_, o, width)) if map.partial && r3 % 2 == 0 => (o + width).next_multiple_of(16).min(n),
                _ => n,
            };
            if cut < n {
                board.bump(H_PARTIAL);
            }
            let plantable = |&&(w, o, width): &&(usize, usize, usize)| width == 8 && data[w] && kept[w] && o + width <= cut;
            let count = map.words.iter().filter(plantable).count() as u64;
            let pick = if count == 0 { usize::MAX } else { (r % count) as usize };
            let mut planted = None;
            let mut plantable_seen = 0;
            // Only lanes the window keeps: the others are its system call's number, arguments
            // and result (ppc's r3 between `sc` and its store), which a write would change.
            for &(w, o, width) in map.words.iter().filter(written).filter(|&&(_, o, width)| o + width <= cut) {
                let v = self.values[ci][w];
                self.buf[o..o + width].copy_from_slice(&v.to_le_bytes()[..width]);
                put(words + w, v);
                if let Some(a) = board.slot(s as u32, flags + w / 64) {
                    a.fetch_or(1 << (w % 64), Ordering::Relaxed);
                }
                if plantable(&&(w, o, width)) {
                    if plantable_seen == pick && self.plant {
                        planted = Some(w);
                    }
                    plantable_seen += 1;
                }
            }
            if let Err(e) = linux::set_regset(tid, map.note, &self.buf[..cut]) {
                // Refused: counted apart. riscv64 7.2 (`invalid_ptrace_v_csr`) refuses an
                // NT_RISCV_VECTOR header whose vtype has vill set, the very header its read
                // returns after a system call discarded V: a read-modify-write fails there.
                if e.raw_os_error() == Some(libc::EINVAL) {
                    board.bump(H_REFUSED);
                    return;
                }
                return self.error(&e);
            }
            board.bump(H_WRITES);
            rec_kind |= KIND_WRITE;
            // Read it back, through another regset that shows the class where there is one:
            // a value written through one must be seen through the other. The record keeps
            // this view (of every lane that regset shows) instead of the first.
            let other = maps.iter().position(|m| m.note != map.note && m.words.iter().any(|x| data[x.0]));
            let bi = other.unwrap_or(ri);
            match linux::get_regset(tid, maps[bi].note, &mut self.buf).map(|m| layout_of(maps, bi, &self.buf[..m])) {
                Ok(Some(bi)) => {
                    let back = &maps[bi];
                    for i in 0..words {
                        put(i, 0);
                    }
                    for &(w, o, width) in &back.words {
                        let mut b = [0u8; 8];
                        b[..width].copy_from_slice(&self.buf[o..o + width]);
                        put(w, u64::from_le_bytes(b));
                    }
                    rec_kind |= KIND_READBACK;
                    ri = bi;
                    if other.is_some() {
                        board.bump(H_CROSS);
                    }
                }
                Ok(None) => {}
                Err(e) => self.error(&e),
            }
            if let Some(w) = planted {
                // The control: the record says one lane holds another value than the one
                // written, by one bit.
                let mask = 1u64 << (self.rnd() % 64);
                put(words + w, self.values[ci][w] ^ mask);
                if let (Some(pw), Some(pm)) = (board.slot(s as u32, S_PLANT_WORD), board.slot(s as u32, S_PLANT_MASK)) {
                    pw.store(w as u64, Ordering::Relaxed);
                    pm.store(mask, Ordering::Relaxed);
                }
                rec_kind |= KIND_PLANT;
                board.bump(H_PLANTED_BY_CLASS + ci);
            }
        }
        if let Some(m) = board.slot(s as u32, S_META) {
            m.store(rec_kind | (ci as u64) << 8 | (ri as u64) << 16 | stop.code() << 24 | (wi as u64) << 32, Ordering::Relaxed);
        }
        rec.store(it, Ordering::Release);
    }
}
