//! The checking engine: threads that repeat fill → window → check and record what differs.
//!
//! A [`Checker`] owns one thread's buffers and runs one window at a time; [`run`] starts the
//! checking threads and the triggers, stops them at the deadline, on the first mismatch or on a
//! stop request (SIGINT/SIGTERM), and returns what happened as an [`Outcome`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::arch::{self, linux};
use crate::class::{ClassId, RegKind};
use crate::forensics;
use crate::pattern::{self, Template};
use crate::signature;
use crate::trigger::{ActiveTriggers, Board, Record, StopKind, TriggerSet};

use crate::plan::Plan;
use crate::schema::{FaultReport, Hex, LaneDiff, Mismatch, PtraceCheck, Reading, TriggerStatus};
use crate::window::{self, HiVector, WindowKind, WindowOp};

/// For `regtorture bench`: when on, every window of a transition class counts whether a context
/// switch (getrusage RUSAGE_THREAD nvcsw + nivcsw) or a migration (the CPU before and after
/// differ) happened while its registers were live. Off in runs: two syscalls more per window.
pub static TRANSITION_STATS: TransitionStats = TransitionStats {
    on: AtomicBool::new(false),
    windows: AtomicU64::new(0),
    changes: AtomicU64::new(0),
    switched: AtomicU64::new(0),
    migrated: AtomicU64::new(0),
};

pub struct TransitionStats {
    pub on: AtomicBool,
    pub windows: AtomicU64,
    /// Transitions of the unit's state those windows made (`Backend::transitions_in_window`).
    pub changes: AtomicU64,
    pub switched: AtomicU64,
    pub migrated: AtomicU64,
}

/// A window in which something differed, as [`Checker::window`] returns it: it describes that
/// window and no other (the checker is borrowed until it is dropped).
pub struct Differed<'c, 'a> {
    checker: &'c Checker<'a>,
    class: usize,
}

impl Differed<'_, '_> {
    /// The window's iteration.
    pub fn iteration(&self) -> u64 {
        self.checker.iteration
    }

    /// (register, lane, bits that differ) of every lane that differed.
    pub fn differences(&self) -> Vec<(usize, usize, u64)> {
        self.checker.differences(self.class)
    }

    /// The findings: each register that differed, its lanes and their readings, the window's
    /// wrong syscall result, the tracer's views; `elapsed` is the run's time at the window.
    pub fn mismatches(&self, elapsed: Duration, triggers: &[String]) -> Vec<Mismatch> {
        self.checker.mismatches(self.class, self.checker.last_kind, elapsed, triggers)
    }
}

/// One thread's buffers and state.
pub struct Checker<'a> {
    plan: &'a Plan,
    pub thread: u32,
    tid: i32,
    /// This process's id, for the signal window's tgkill (getpid is a real syscall).
    pid: i32,
    templates: Vec<Template>,
    expected: Vec<Vec<u64>>,
    observed: Vec<Vec<u64>>,
    /// Per class and window kind: the bits the ABI keeps, where not all (SVE after a syscall).
    preserved: Vec<Vec<Option<Vec<u64>>>>,
    /// Per class and window kind: what the window may lose is scrubbed (`Backend::scrubbed`):
    /// a pattern value there is reported.
    scrubbed: Vec<Vec<bool>>,
    /// The words of the last window's class that broke the scrub rule.
    foreign: Vec<usize>,
    /// Every window spins only after its syscall (`set_late_spin`).
    late: bool,
    /// Per class: the assembly ORs the iteration in as it loads (no fill pass; see `window`).
    fused: Vec<bool>,
    hi: HiVector,
    last_kind: WindowKind,
    /// Per window kind: (spin, the operation) of the last window of that kind.
    ops: [Option<(u64, WindowOp)>; WindowKind::ALL.len()],
    pages: linux::FreshPages,
    /// The timespec sleep and poll windows lend the kernel (clock_nanosleep reads it, ppoll
    /// writes the time left back).
    timeout: Box<libc::timespec>,
    /// The wrong result of the last window's syscall, when it had one right answer.
    bad_result: Option<i64>,
    /// What this thread's signal handlers found at their entry against the rule since the last
    /// window (`Backend::handler_entry_state`): (how many entries, the last one's words).
    handler_entry: Option<(u64, [u64; 2])>,
    /// A trace is recording (`--trace`): each window's start time is taken, for its timeline.
    timed: bool,
    /// CLOCK_MONOTONIC nanoseconds at the last window's start and end (when `timed`).
    window_start_ns: u64,
    window_end_ns: u64,
    pub iteration: u64,
    /// The ptrace trigger's board, when it runs: the tracer's records of this thread's windows.
    board: Option<&'a Board>,
    /// What the tracer saw and wrote in the last window, when it stopped the thread in it.
    traced: Option<Traced>,
    /// Per class: the mask a frame rewrite XORs into each word (0: not rewritten).
    rewrite_masks: Vec<Vec<u64>>,
    /// The handler rewrites this thread's frames (`enable_rewrites`).
    rewrites: bool,
    /// Per class: the values the clobbering handler loads (`handler_values`), to read a control
    /// register that came back holding the handler's image.
    handler: Vec<Vec<u64>>,
}

/// What changed the last window's expected values, checked: the tracer's record, the
/// handler's frame rewrite.
struct Traced {
    /// The regset the tracer read, and how it stopped the thread.
    ptrace: Option<(&'static str, StopKind)>,
    /// The regset it wrote through, when it wrote.
    written_regset: &'static str,
    /// (word, value before the write) of every word the tracer wrote.
    before: Vec<(usize, u64)>,
    /// (word, value before the rewrite) of every word the handler rewrote in its frame.
    rewritten: Vec<(usize, u64)>,
    /// (word, the register's value, the view's value, byte offset in the regset) of every lane
    /// the regset showed otherwise than the thread held it.
    view_diffs: Vec<(usize, u64, u64, usize)>,
}

impl<'a> Checker<'a> {
    pub fn new(plan: &'a Plan, thread: u32) -> std::io::Result<Checker<'a>> {
        // The pattern's thread number: this process's own range under `--processes`.
        let ident = crate::leak::ident(thread);
        let templates: Vec<Template> = plan.layouts.iter().map(|l| Template::new(&plan.pattern, l, ident)).collect();
        let fused = plan
            .layouts
            .iter()
            .zip(&templates)
            .map(|(l, t)| {
                arch::native().fuses_iteration(l.id) && t.pure_data().is_some() && WindowKind::ALL.iter().all(|&k| arch::native().preserved(l.id, k).is_none())
            })
            .collect();
        Ok(Checker {
            plan,
            thread,
            tid: linux::gettid(),
            pid: linux::getpid(),
            templates,
            expected: plan.layouts.iter().map(|l| vec![0; l.words]).collect(),
            observed: plan.layouts.iter().map(|l| vec![0; l.words]).collect(),
            preserved: plan.layouts.iter().map(|l| WindowKind::ALL.iter().map(|&k| arch::native().preserved(l.id, k)).collect()).collect(),
            scrubbed: plan.layouts.iter().map(|l| WindowKind::ALL.iter().map(|&k| arch::native().scrubbed(l.id, k)).collect()).collect(),
            foreign: Vec::new(),
            late: false,
            last_kind: WindowKind::Spin,
            ops: [None; WindowKind::ALL.len()],
            fused,
            hi: HiVector::default(),
            pages: linux::FreshPages::new()?,
            timeout: Box::new(window::SLEEP),
            bad_result: None,
            handler_entry: None,
            timed: linux::tracing(),
            window_start_ns: 0,
            window_end_ns: 0,
            iteration: 0,
            board: None,
            traced: None,
            rewrite_masks: plan.layouts.iter().map(|l| vec![0; l.words]).collect(),
            rewrites: false,
            handler: handler_values(plan).into_iter().map(|(_, v)| v).collect(),
        })
    }

    /// Take part in the ptrace trigger's checks: publish each window, take the tracer's records.
    pub fn attach(&mut self, board: &'a Board) {
        board.attach(self.thread, self.tid);
        self.board = Some(board);
    }

    /// Leave the ptrace trigger's board and end frame rewrites (the thread ends).
    pub fn detach(&mut self) {
        if let Some(b) = self.board.take() {
            b.attach(self.thread, 0);
        }
        if self.rewrites {
            linux::set_rewrite_table(self.thread, None);
            self.rewrites = false;
        }
    }

    /// Check window `it` of class `ci` again, where its expected values changed: the tracer's
    /// record of it (the registers must hold what the tracer wrote, and the regset it read
    /// must have shown what they held) and the handler's frame rewrite (the registers must
    /// hold the frame's new values). Returns whether all of it holds.
    fn recheck(&mut self, ci: usize, it: u64, rec: Option<Record>, rewritten: Option<linux::Rewrite>) -> bool {
        if self.fused[ci] {
            self.templates[ci].fill(&self.plan.pattern, it, &mut self.expected[ci]);
        }
        let mut t = Traced { ptrace: None, written_regset: "", before: Vec::new(), view_diffs: Vec::new(), rewritten: Vec::new() };
        if let Some((values, flags)) = rec.as_ref().and_then(|r| r.written.as_ref()) {
            for w in (0..self.plan.layouts[ci].words).filter(|&w| flags[w]) {
                t.before.push((w, self.expected[ci][w]));
                self.expected[ci][w] = values[w];
            }
        }
        // A frame rewrite changes each lane's writer. Where the tracer wrote the same lane in
        // the same window, either came last: both results are right.
        let (rewrites, plant) = rewritten.map_or((Vec::new(), None), |r| (r.words, r.plant));
        for &w in &rewrites {
            let m = self.rewrite_masks[ci].get(w).copied().unwrap_or(0);
            if m == 0 {
                continue;
            }
            if t.before.iter().any(|b| b.0 == w) {
                // The order is unknown: the reading nearer what the thread holds is taken.
                let (o, e) = (self.observed[ci][w], self.expected[ci][w]);
                if (o ^ e ^ m).count_ones() < (o ^ e).count_ones() {
                    self.expected[ci][w] ^= m;
                }
            } else {
                t.rewritten.push((w, self.expected[ci][w]));
                self.expected[ci][w] ^= m;
            }
        }
        // The control's plant: the expectation of one rewritten lane, one bit off.
        if let Some((w, mask)) = plant.filter(|&(w, _)| t.rewritten.iter().any(|b| b.0 == w)) {
            self.expected[ci][w] ^= mask;
        }
        if let (Some(rec), Some(board)) = (&rec, self.board) {
            let map = &board.maps[ci][rec.regset];
            for &(w, offset, width) in &map.words {
                let width_mask = if width >= 8 { u64::MAX } else { (1u64 << (8 * width)) - 1 };
                let kept = self.kept(ci, w);
                // Read before the write, a written lane showed its old value; read back after
                // it, what was written (the control's plant is a lie of the record alone).
                let written = rec.written.as_ref().filter(|_| rec.readback).and_then(|(v, f)| f.get(w).is_some_and(|&x| x).then(|| v[w]));
                let unplanted = |v: u64| rec.planted.filter(|p| p.0 == w).map_or(v, |p| v ^ p.1);
                let held = match written {
                    Some(v) => unplanted(v),
                    None => t.before.iter().find(|b| b.0 == w).map_or(self.expected[ci][w], |b| b.1),
                };
                // The stop may have come before or after a frame rewrite of the lane (and the
                // tracer's write, at the stop, after it).
                let held = t.rewritten.iter().find(|b| b.0 == w).map_or(held, |b| b.1);
                let m = if rewrites.contains(&w) { self.rewrite_masks[ci][w] } else { 0 };
                // A lane the kernel's ABI fills at a syscall-exit stop must show that value.
                let abi = (rec.stop == StopKind::SyscallExit && map.note == arch::NT_PRSTATUS).then(|| arch::native().syscall_exit_view(offset)).flatten();
                let (held, m) = abi.map_or((held, m), |v| (v, 0));
                let shows = |v: u64| (rec.view[w] ^ v) & width_mask & kept == 0;
                // A lane the thread did not keep is the window's own finding, not the view's.
                let kept_by_thread = (self.observed[ci][w] ^ self.expected[ci][w]) & kept == 0;
                if !shows(held) && (m == 0 || !shows(held ^ m)) && kept_by_thread {
                    t.view_diffs.push((w, held, rec.view[w] & width_mask | held & !width_mask, offset));
                }
            }
            t.ptrace = Some((map.name, rec.stop));
            t.written_regset = board.maps[ci].get(rec.written_regset).map_or(map.name, |m| m.name);
        }
        let regs_ok = (0..self.plan.layouts[ci].words).all(|w| (self.expected[ci][w] ^ self.observed[ci][w]) & self.kept(ci, w) == 0);
        let ok = regs_ok && t.view_diffs.is_empty();
        self.traced = Some(t);
        ok
    }

    /// Have the clobbering handler rewrite this thread's signal frames now and then (see
    /// `linux::set_rewrite_table`): for every plain class whose windows keep what they hold,
    /// each data lane's mask turns this thread's value into the rewriting writer's.
    pub fn enable_rewrites(&mut self) {
        let p = self.plan.pattern;
        let ident = crate::leak::ident(self.thread);
        let mut table = Vec::new();
        for (ci, l) in self.plan.layouts.iter().enumerate() {
            if !rewritable(l.id) {
                continue;
            }
            let mut lanes = Vec::new();
            for (w, reg, lane) in l.data_lanes() {
                let id = |thread| pattern::Identity { thread, class: l.id, reg: reg as u32, lane: lane as u32 };
                let m = u64::from(p.lo(id(ident)) ^ p.lo(id(pattern::REWRITE_THREAD)));
                self.rewrite_masks[ci][w] = m;
                lanes.push((w, reg, lane, m));
            }
            let kept_whole = WindowKind::ALL.iter().all(|&k| arch::native().preserved(l.id, k).is_none());
            table.push((l.id, lanes, kept_whole));
        }
        linux::set_rewrite_table(self.thread, Some(linux::RewriteTable { classes: table }));
        self.rewrites = true;
    }

    /// The operation of a window of `kind`: built from its spec once per kind and spin, then
    /// copied (a spec lookup per window costs about a sixth of the engine's rate at spin 0).
    fn op(&mut self, kind: WindowKind, spin: u64) -> WindowOp {
        let slot = &mut self.ops[kind as usize];
        if let Some((s, op)) = slot {
            if *s == spin {
                return *op;
            }
        }
        let op = self.build_op(kind, spin);
        self.ops[kind as usize] = Some((spin, op));
        op
    }

    fn build_op(&self, kind: WindowKind, spin: u64) -> WindowOp {
        let ctx = window::Ctx { pid: self.pid, tid: self.tid, clobber_signal: linux::sig_clobber(), timeout: &*self.timeout as *const libc::timespec as u64 };
        kind.op(&ctx, spin)
    }

    /// Run one window of class `ci` (index into the plan's layouts); true when every register
    /// came back as it went in.
    ///
    /// For classes whose assembly ORs the iteration in as it loads (`arch::fuses_iteration`),
    /// the registers are loaded from the template and the iteration vector, and the expected
    /// buffer is written only when something differs: a pass over memory less per window.
    ///
    /// Returns what differed, when something did: the one way to describe that window, so a
    /// description is always of the window just run, its class and kind.
    pub fn window(&mut self, ci: usize, kind: WindowKind, spin: u64) -> Option<Differed<'_, 'a>> {
        self.iteration += 1;
        let it = self.iteration;
        // ppoll writes the time left back: every window starts from the full timeout.
        *self.timeout = window::SLEEP;
        let signals = linux::thread_signals(self.thread);
        let layout = &self.plan.layouts[ci];
        let mut op = self.op(kind, spin);
        if self.late {
            op.spin_after += op.spin;
            op.spin = 0;
        }
        let touch = (op.flags & window::FLAG_TOUCH != 0).then(|| self.pages.fresh());
        if let Some(b) = self.board {
            b.begin(self.thread, it, kind);
        }
        self.traced = None;
        self.last_kind = kind;
        let template = &self.templates[ci];
        if self.timed {
            self.window_start_ns = linux::monotonic_ns();
            linux::set_window_start(self.thread, self.window_start_ns);
        }
        // After the start is published: restarting this thread's window timer is a system call,
        // on whose exit the kernel runs task_work and delivers signals as on the window's own
        // (measured: the powerpc fast-exit fault on that timer_settime), so its events belong
        // to this window's timeline.
        let window_no = linux::window_begun(self.thread);
        if self.rewrites {
            linux::set_rewrite_window(self.thread, !kind.has_syscall());
        }
        let measure = TRANSITION_STATS.on.load(Ordering::Relaxed) && layout.id.is_transition();
        let before = measure.then(|| (linux::context_switches(), linux::current_cpu()));
        let regs_ok = if self.fused[ci] {
            let base = template.pure_data().expect("fused classes are plain data");
            let hi = Template::hi_word(&self.plan.pattern, it);
            self.hi = HiVector([hi; 8]);
            arch::native().run_window(layout.id, base, &mut self.observed[ci], &mut op, touch, Some(&self.hi));
            self.reap(&op);
            let ok = base.iter().zip(&self.observed[ci]).fold(0, |acc, (b, o)| acc | ((b | hi) ^ o)) == 0;
            if !ok {
                template.fill(&self.plan.pattern, it, &mut self.expected[ci]);
            }
            ok
        } else {
            template.fill(&self.plan.pattern, it, &mut self.expected[ci]);
            arch::native().run_window(layout.id, &self.expected[ci], &mut self.observed[ci], &mut op, touch, None);
            self.reap(&op);
            self.foreign.clear();
            match &self.preserved[ci][kind as usize] {
                None => same(&self.expected[ci], &self.observed[ci]),
                Some(m) => {
                    let kept = self.expected[ci].iter().zip(&self.observed[ci]).zip(m).all(|((e, o), m)| (e ^ o) & m == 0);
                    if self.scrubbed[ci][kind as usize] {
                        let p = &self.plan.pattern;
                        let (e, o) = (&self.expected[ci], &self.observed[ci]);
                        // Data words only: a control register's few bits say nothing of a writer.
                        let data = |w: usize| layout.locate(w).is_some_and(|(r, _)| layout.regs[r].kind == RegKind::Data);
                        self.foreign = (0..layout.words).filter(|&w| m[w] != u64::MAX && o[w] != e[w] && pattern::is_written(p, o[w]) && data(w)).collect();
                    }
                    kept && self.foreign.is_empty()
                }
            }
        };
        // The tracer stopped the thread inside this window, or its handler rewrote the frame:
        // the expected values changed, and the window is judged again.
        let rec = self.board.and_then(|b| b.take(self.thread, it, ci));
        let rewritten = linux::take_rewrite(self.thread, window_no, layout.words).filter(|r| r.class == layout.id.code());
        let regs_ok = if rec.is_some() || rewritten.is_some() { self.recheck(ci, it, rec, rewritten) } else { regs_ok };
        if self.timed {
            self.window_end_ns = linux::monotonic_ns();
            linux::set_window_end(self.thread, self.window_end_ns);
        }
        if let Some((sw, cpu)) = before {
            let s = &TRANSITION_STATS;
            s.windows.fetch_add(1, Ordering::Relaxed);
            s.changes.fetch_add(arch::native().transitions_in_window(layout.id, op.spin, op.spin_after), Ordering::Relaxed);
            s.switched.fetch_add(u64::from(linux::context_switches() != sw), Ordering::Relaxed);
            s.migrated.fetch_add(u64::from(linux::current_cpu() != cpu), Ordering::Relaxed);
        }
        // The result of a window whose syscall has one right answer (see the window's file).
        self.bad_result = (op.sysno >= 0 && !kind.result_ok(op.ret, linux::thread_signals(self.thread) != signals)).then_some(op.ret);
        self.handler_entry = linux::take_handler_entry(self.thread);
        // (A window the tracer stopped has its expected values already, written ones included.)
        if (self.bad_result.is_some() || self.handler_entry.is_some()) && regs_ok && self.fused[ci] && self.traced.is_none() {
            self.templates[ci].fill(&self.plan.pattern, it, &mut self.expected[ci]);
        }
        if regs_ok && self.bad_result.is_none() && self.handler_entry.is_none() { None } else { Some(Differed { checker: self, class: ci }) }
    }

    /// Make every window spin only after its syscall, so that a signal lands (nearly always)
    /// after the kernel handled the syscall: the positive control of the scrub rule needs the
    /// frame to hold what the syscall left.
    pub fn set_late_spin(&mut self, on: bool) {
        self.late = on;
    }

    /// (expected, observed) of the last window of class `ci`.
    pub fn buffers(&self, ci: usize) -> (&[u64], &[u64]) {
        (&self.expected[ci], &self.observed[ci])
    }

    /// Reap the child of a fork/vfork window.
    fn reap(&self, op: &WindowOp) {
        if op.flags & window::FLAG_CHILD_EXIT != 0 && op.ret > 0 {
            let _ = linux::reap(op.ret, Duration::from_secs(2));
        }
    }

    /// The bits of word `w` of class `ci` that the last window had to keep: all of a word that
    /// broke the scrub rule.
    fn kept(&self, ci: usize, w: usize) -> u64 {
        if self.foreign.contains(&w) {
            return u64::MAX;
        }
        self.preserved[ci][self.last_kind as usize].as_ref().map_or(u64::MAX, |m| m[w])
    }

    /// (register, lane, bits that differ) of every lane that differed in the last window of `ci`.
    fn differences(&self, ci: usize) -> Vec<(usize, usize, u64)> {
        let (exp, obs) = (&self.expected[ci], &self.observed[ci]);
        let layout = &self.plan.layouts[ci];
        (0..layout.words)
            .filter(|&w| (exp[w] ^ obs[w]) & self.kept(ci, w) != 0)
            .filter_map(|w| layout.locate(w).map(|(r, l)| (r, l, (exp[w] ^ obs[w]) & self.kept(ci, w))))
            .collect()
    }

    /// Describe what differed in the last window, of class `ci` and kind `kind`.
    fn mismatches(&self, ci: usize, kind: WindowKind, elapsed: Duration, triggers: &[String]) -> Vec<Mismatch> {
        let plan = self.plan;
        let layout = &plan.layouts[ci];
        let (exp, obs) = (&self.expected[ci], &self.observed[ci]);
        let cpu = linux::current_cpu();
        let window_ns = self.timed.then_some((self.window_start_ns, self.window_end_ns));
        let control_images: Vec<(String, Hex)> =
            layout.regs.iter().filter(|r| matches!(r.kind, RegKind::Control { .. })).map(|r| (r.name.clone(), Hex(exp[r.offset / 8]))).collect();
        let name = |c: ClassId, r: usize| plan.reg_name(c, r);
        let mismatch = |register: String, lanes: Vec<LaneDiff>, control_images: Vec<(String, Hex)>| Mismatch {
            thread: self.thread,
            tid: self.tid,
            cpu,
            iteration: self.iteration,
            elapsed_s: elapsed.as_secs_f64(),
            class: layout.id,
            register,
            window: kind,
            triggers: triggers.to_vec(),
            lanes,
            control_images,
            signature: None,
            window_ns,
            timeline: None,
            ptrace: self
                .traced
                .as_ref()
                .filter(|t| !t.before.is_empty())
                .and_then(|t| t.ptrace.map(|(_, stop)| (t.written_regset, stop)))
                .map(|(regset, stop)| PtraceCheck { kind: "write".into(), regset: regset.into(), stop: stop.name().into() }),
            truncated: None,
        };
        let mut out: Vec<Mismatch> = Vec::new();
        for w in (0..layout.words).filter(|&w| (exp[w] ^ obs[w]) & self.kept(ci, w) != 0) {
            let Some((reg, lane)) = layout.locate(w) else { continue };
            // A control-register image is the more specific reading: a pattern decode of such a
            // value matches by chance (1 in 32), the image match does not.
            let image = control_images.iter().find(|(_, img)| pattern::holds_image(obs[w], img.0));
            let written_over = self.traced.as_ref().and_then(|t| t.before.iter().find(|b| b.0 == w)).map(|b| b.1);
            let rewritten_over = self.traced.as_ref().and_then(|t| t.rewritten.iter().find(|b| b.0 == w)).map(|b| b.1);
            // A control register's few bits name no writer, but one that holds exactly what the
            // signal handler loaded there was not restored at sigreturn.
            let handler_image = matches!(layout.regs[reg].kind, RegKind::Control { .. }) && self.handler.get(ci).and_then(|h| h.get(w)) == Some(&obs[w]);
            let reading = match image {
                Some((n, _)) => Reading::ControlImage { register: n.clone() },
                None if handler_image => Reading::SignalHandler { class: layout.id, register: layout.regs[reg].name.clone(), lane: lane as u32 },
                None if written_over == Some(obs[w]) => Reading::BeforePtraceWrite,
                None if rewritten_over == Some(obs[w]) => Reading::BeforeFrameRewrite,
                None => {
                    let explain =
                        |e: u64, o: u64| pattern::explain(&plan.pattern, layout, crate::leak::ident(self.thread), self.iteration, reg, lane, e, o, &name);
                    let plain = explain(exp[w], obs[w]);
                    // A lane the handler rewrote carries the rewrite's mask on top of whatever
                    // the kernel made of it: an earlier signal's lost restore, say, leaves the
                    // handler's value, which the rewrite then changed. Read it without the mask
                    // when only that names a writer.
                    // (A value that decodes by chance names a random writer: the unmasked
                    // reading, where it names one, is the likelier.)
                    match rewritten_over {
                        Some(old) => {
                            let unmasked = explain(old, obs[w] ^ self.rewrite_masks[ci][w]);
                            if matches!(unmasked, Reading::Unknown | Reading::BitFlip { .. }) { plain } else { unmasked }
                        }
                        None => plain,
                    }
                }
            };
            // Another checking process's value: a leak across address spaces.
            let reading = match reading {
                Reading::OtherThread { thread, class, register, lane } => match crate::leak::other_process(thread) {
                    Some((process, thread)) => Reading::OtherProcess { process, thread, class, register, lane },
                    None => Reading::OtherThread { thread, class, register, lane },
                },
                r => r,
            };
            let diff = LaneDiff::new(lane, exp[w], obs[w], reading, None);
            let regname = &layout.regs[reg].name;
            match out.last_mut() {
                Some(m) if &m.register == regname => m.lanes.push(diff),
                _ => out.push(mismatch(regname.clone(), vec![diff], control_images.clone())),
            }
        }
        for m in &mut out {
            m.truncated = truncation(layout, m);
        }
        // A signal handler entered with state the rule says must be zero (aarch64: streaming
        // mode or ZA on, or TPIDR2 set, at a handler's entry): one finding per word.
        if let Some((n, words)) = self.handler_entry {
            for (w, (class, reg)) in words.iter().zip([(ClassId::Za, "svcr at signal handler entry"), (ClassId::Tpidr2, "tpidr2 at signal handler entry")]) {
                if *w != 0 {
                    let diff = LaneDiff::new(0, 0, *w, Reading::Unknown, None);
                    out.push(Mismatch { class, ..mismatch(format!("{reg} ({n} entries since the last window)"), vec![diff], vec![]) });
                }
            }
        }
        if let Some(ret) = self.bad_result {
            let reading = Reading::SyscallResult { syscall: kind.syscall_name().unwrap_or("syscall").into(), errno: -ret };
            let diff = LaneDiff::new(0, 0, ret as u64, reading, None);
            out.push(mismatch("result".into(), vec![diff], vec![]));
        }
        // What the tracer's regset showed otherwise than the registers held: a finding of its
        // own kind, one per register.
        if let Some((t, (regset, stop))) = self.traced.as_ref().and_then(|t| t.ptrace.map(|p| (t, p))) {
            for &(w, held, seen, offset) in &t.view_diffs {
                let Some((reg, lane)) = layout.locate(w) else { continue };
                let reading = pattern::explain(&plan.pattern, layout, crate::leak::ident(self.thread), self.iteration, reg, lane, held, seen, &name);
                let diff = LaneDiff::new(lane, held, seen, reading, Some(offset));
                let regname = &layout.regs[reg].name;
                let check = PtraceCheck { kind: "view".into(), regset: regset.into(), stop: stop.name().into() };
                match out.last_mut() {
                    Some(m) if &m.register == regname && m.ptrace.as_ref() == Some(&check) => m.lanes.push(diff),
                    _ => out.push(Mismatch { ptrace: Some(check), ..mismatch(regname.clone(), vec![diff], control_images.clone()) }),
                }
            }
        }
        for m in &mut out {
            m.signature = signature::find(arch::name(), m);
        }
        // A control register's few varying bits name no writer, so no row can match it
        // alone; in a window where the class's data registers matched a known bug, it is part
        // of that bug (riscv64's fcsr beside f0-f31 with the handler's values).
        // Likewise a data register whose value names no writer, or one by chance, in a window
        // where most of the class's registers matched one known bug: a bug that loses the
        // whole state at once (riscv64's FP registers at sigreturn) can meet a frame the
        // handler had rewritten, and the value is then the two together (measured on sid's
        // 7.2.13: 1 to 3 of 30 such registers per window read as unknown or another thread's).
        let is_control = |r: &str| layout.regs.iter().any(|x| x.name == r && matches!(x.kind, RegKind::Control { .. }));
        let registers = out.iter().filter(|m| m.ptrace.is_none()).count();
        if let Some(sig) = out.iter().find_map(|m| m.signature.clone()) {
            let same = out.iter().filter(|m| m.signature.as_ref().is_some_and(|s| s.id == sig.id)).count();
            let most = 2 * same > registers;
            for m in out.iter_mut().filter(|m| m.signature.is_none() && m.ptrace.is_none() && (is_control(&m.register) || most)) {
                m.signature = Some(sig.clone());
            }
        }
        out
    }
}

/// Whether two buffers are equal. No early exit, and 8- or 16-byte loads only: the assembly has
/// just stored `observed` with register-wide stores, and a wider load of bytes that narrower
/// stores wrote a moment ago stalls on store forwarding (a library memcmp's 32- and 64-byte
/// loads did, and cost more than the check itself).
#[inline]
pub fn same(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Shared state of a run, seen by checking threads, triggers and the progress display.
pub struct Shared {
    pub stop: AtomicBool,
    /// checks[class][window]
    pub checks: Vec<Vec<AtomicU64>>,
    pub mismatch_count: AtomicU64,
    pub mismatches: Mutex<Vec<Mismatch>>,
    pub start: Instant,
    /// CLOCK_MONOTONIC at `start`, to place faults in the run.
    start_ns: u64,
}

impl Shared {
    pub fn new(plan: &Plan) -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            checks: plan.layouts.iter().map(|_| plan.windows.iter().map(|_| AtomicU64::new(0)).collect()).collect(),
            mismatch_count: AtomicU64::new(0),
            mismatches: Mutex::new(Vec::new()),
            start: Instant::now(),
            start_ns: linux::monotonic_ns(),
        }
    }

    /// The faults recorded since the run started, decoded.
    pub fn faults(&self, plan: &Plan, triggers: &[String]) -> Vec<FaultReport> {
        // The word check_loop publishes: (class index << 16 | window index) + 1, 0 between windows.
        let doing = |d: u64| match d.checked_sub(1) {
            Some(d) => match (plan.layouts.get((d >> 16) as usize), plan.windows.get((d & 0xffff) as usize)) {
                (Some(l), Some(w)) => format!("{} {w} window", l.id),
                _ => "an unknown window".to_string(),
            },
            None => "between windows".to_string(),
        };
        let ctx = forensics::Context { doing: &doing, triggers, start_ns: self.start_ns };
        linux::faults().iter().map(|f| forensics::decode(f, &ctx)).collect()
    }

    pub fn total_checks(&self) -> u64 {
        self.checks.iter().flatten().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A snapshot for the progress line.
#[derive(Clone)]
pub struct Progress {
    pub elapsed: Duration,
    pub checks: u64,
    pub mismatches: u64,
    pub trigger_events: Vec<(String, u64)>,
}

/// What a run did.
#[derive(Clone)]
pub struct Outcome {
    pub elapsed: Duration,
    /// checks[class][window]
    pub checks: Vec<Vec<u64>>,
    pub mismatch_count: u64,
    pub mismatches: Vec<Mismatch>,
    pub interrupted: bool,
    pub triggers: crate::schema::TriggerResults,
    /// Faults of regtorture's own threads (see [`crate::forensics`]): the first few in
    /// detail, all of them counted.
    pub faults: Vec<FaultReport>,
    pub fault_count: u64,
}

/// Add `found` to the kept mismatches, at most `keep` of them: one that matches no known bug
/// takes the place of the last kept one that does, so a known bug that recurs in every window
/// never crowds a new finding out of the report (whose verdict is read from the kept ones).
/// A register cut short: its lanes from some lane k > 0 to its last all read zero where values
/// were expected, and none below k differed (so they held). Whole 64-bit lanes only.
fn truncation(layout: &crate::class::ClassLayout, m: &Mismatch) -> Option<crate::schema::Truncation> {
    let spec = layout.regs.iter().find(|r| r.name == m.register)?;
    let n = spec.lanes();
    let k = m.lanes.first()?.lane;
    let cut = spec.bytes % 8 == 0
        && k > 0
        && m.lanes.len() == n - k
        && m.lanes.iter().enumerate().all(|(i, l)| l.lane == k + i && l.observed.0 == 0 && l.expected.0 != 0);
    cut.then(|| crate::schema::Truncation { bytes: 8 * k, length_is: arch::native().length_named(layout.id, 8 * k) })
}

pub fn keep_findings(kept: &mut Vec<Mismatch>, found: Vec<Mismatch>, keep: usize) {
    for m in found {
        if kept.len() < keep {
            kept.push(m);
        } else if m.signature.is_none() {
            if let Some(i) = kept.iter().rposition(|k| k.signature.is_some()) {
                kept[i] = m;
            }
        }
    }
}

impl Outcome {
    /// Whether something was found that matches no known bug: what ends a stop-on-first run.
    /// (Unknown findings are kept before known ones: see [`keep_findings`].)
    pub fn has_unknown_finding(&self) -> bool {
        (self.mismatch_count > 0 && self.mismatches.is_empty())
            || self.mismatches.iter().any(|m| m.signature.is_none())
            || (self.fault_count > 0 && self.faults.is_empty())
            || self.faults.iter().any(|f| f.signature.is_none())
    }

    /// Whether a stop-on-first run ends here: at a finding that matches no known bug, or, with
    /// `stop_on_known` (triage), at any finding.
    pub fn ends_a_stop_on_first_run(&self, stop_on_known: bool) -> bool {
        if stop_on_known { self.mismatch_count > 0 || self.fault_count > 0 } else { self.has_unknown_finding() }
    }

    /// Add a later phase's outcome to this one (same classes and windows).
    pub fn merge(&mut self, later: Outcome, keep: usize) {
        // Rates ("..._per_s...") are averaged over time; counts add up.
        let (w0, w1) = (self.elapsed.as_secs_f64(), later.elapsed.as_secs_f64());
        let rate = |k: &str, old: f64, new: f64| {
            if k.contains("per_s") { (old * w0 + new * w1) / (w0 + w1).max(1e-9) } else { old + new }
        };
        // Times of the later phase's findings count from the start of the whole run.
        let offset = self.elapsed.as_secs_f64();
        let mut later = later;
        later.mismatches.iter_mut().for_each(|m| m.elapsed_s += offset);
        later.faults.iter_mut().for_each(|f| f.elapsed_s += offset);
        self.elapsed += later.elapsed;
        for (row, add) in self.checks.iter_mut().zip(&later.checks) {
            row.iter_mut().zip(add).for_each(|(a, b)| *a += b);
        }
        self.mismatch_count += later.mismatch_count;
        self.faults.extend(later.faults);
        self.fault_count += later.fault_count;
        keep_findings(&mut self.mismatches, later.mismatches, keep);
        self.interrupted |= later.interrupted;
        for t in later.triggers {
            match self.triggers.iter_mut().find(|x| x.name == t.name) {
                Some(x) => {
                    x.events += t.events;
                    if x.events > 0 {
                        x.status = TriggerStatus::Ran;
                        x.reason = None;
                    } else if t.status == TriggerStatus::Idle {
                        x.status = t.status;
                        x.reason = t.reason.clone();
                    }
                    for (k, v) in t.details {
                        match x.details.iter_mut().find(|(n, _)| *n == k) {
                            Some((_, old)) => *old = rate(&k, *old, v),
                            None => x.details.push((k.clone(), rate(&k, 0.0, v))),
                        }
                    }
                }
                None => self.triggers.push(t),
            }
        }
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        for t in &mut self.triggers {
            t.events_per_s = t.events as f64 / secs;
        }
    }
}

/// One checking-thread slot: a single thread for the whole run, or a fresh thread every
/// [`ActiveTriggers::checker_lifetime`] when a trigger needs fresh tasks.
fn run_checker_slot(plan: &Plan, shared: &Shared, thread: u32, active: &ActiveTriggers<'_>) {
    // A unit the kernel constructs at a thread's first use: every fresh thread is one more
    // transition for the first-use probe.
    let first_use = plan.layouts.iter().any(|l| arch::native().first_use_rule(l.id).is_some() || arch::native().first_use_in_window(l.id));
    match active.checker_lifetime().or(first_use.then_some(FIRST_USE_LIFE)) {
        None => check_loop(plan, shared, thread, active, None),
        Some(life) => {
            while !shared.should_stop() {
                std::thread::scope(|s| {
                    s.spawn(|| check_loop(plan, shared, thread, active, Some(life)));
                });
            }
        }
    }
}

/// The lifetime of a checking thread where the plan has a class with a first-use probe
/// (`Backend::first_use_rule`): ten fresh threads a second per slot, where a start is cheap
/// (under QEMU's TCG, with signal and TLB triggers, a start took up to 5 s: the lifetime then
/// grows with it, see [`LIFE_PER_START`]).
const FIRST_USE_LIFE: Duration = Duration::from_millis(100);

/// How many times what its triggers' per-thread start took a checking thread with a lifetime
/// lives at least: under QEMU's TCG io_uring's start (128 blocking requests and the worker
/// count) took seconds, and a 20 ms life then left the thread in its windows, where tgkill and
/// affinity find it, about 1 % of the time.
const LIFE_PER_START: u32 = 4;

/// The body of one checking thread: windows over every (class, window) pair until told to stop,
/// or, with a lifetime, until it has lived that long (counted from the end of its start, and
/// at least `LIFE_PER_START` times that start: from the thread's first instruction to the end
/// of its triggers' per-thread start).
pub fn check_loop(plan: &Plan, shared: &Shared, thread: u32, active: &ActiveTriggers<'_>, life: Option<Duration>) {
    let started = Instant::now();
    // First: a unit the kernel constructs at this thread's first use of it (before anything
    // else of the thread can touch it).
    crate::leak::first_use_probe(plan, thread);
    // A fault must reach its handler even when a kernel bug left the stack pointer wrong: a
    // checking thread without its alternate stack would die unexplained, so it does not run.
    let _altstack = match linux::AltStack::new() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("regtorture: checking thread {thread} could not start: no alternate signal stack for fault forensics: {e}");
            return;
        }
    };
    let mut checker = match Checker::new(plan, thread) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("regtorture: checking thread {thread} could not start: {e}");
            return;
        }
    };
    if !linux::register_thread(thread) {
        eprintln!("regtorture: checking thread {thread} has no slot in the per-thread tables (at most {}): not started", linux::THREAD_SLOTS_MAX);
        return;
    }
    let names = active.names();
    let _guard = active.enter_checker();
    // After the triggers' per-thread start (io_uring's is hundreds of system calls, seconds
    // under TCG): a tracer that stopped the thread there only delayed its first window (the
    // arm64 guest's last phase then had no checking thread in a window for tgkill to signal).
    if let Some(b) = active.board() {
        checker.attach(b);
    }
    checker.enable_rewrites();
    let until = life.map(|l| Instant::now() + l.max(started.elapsed() * LIFE_PER_START));
    // Window-major order: the classes take turns, so consecutive windows load different state.
    let pairs: Vec<(usize, usize)> = (0..plan.windows.len()).flat_map(|w| (0..plan.layouts.len()).map(move |c| (c, w))).collect();
    let mut local = vec![0u64; pairs.len()];
    let mut done: u64 = 0;
    // Counters are published about every 256 windows; the lifetime is looked at every round.
    let every = (256 / pairs.len().max(1)).max(1) as u64;
    'outer: while !shared.should_stop() {
        for (i, &(ci, wi)) in pairs.iter().enumerate() {
            let kind = plan.windows[wi];
            linux::set_doing(thread, ((ci as u64) << 16 | wi as u64) + 1);
            if let Some(differed) = checker.window(ci, kind, plan.spin) {
                // Keep the kernel's events of this window in the trace, if one records.
                linux::freeze_trace();
                let found = differed.mismatches(shared.start.elapsed(), &names);
                shared.mismatch_count.fetch_add(found.len() as u64, Ordering::Relaxed);
                // A known bug is reported and the run goes on: it must not mask the rest.
                let unknown = found.iter().any(|m| m.signature.is_none());
                keep_findings(&mut shared.mismatches.lock().unwrap_or_else(|e| e.into_inner()), found, plan.keep);
                if plan.stop_on_first && (unknown || plan.stop_on_known) {
                    shared.stop.store(true, Ordering::Relaxed);
                }
            }
            local[i] += 1;
            if shared.should_stop() {
                break 'outer;
            }
        }
        done += 1;
        if done % every == 0 {
            flush(&pairs, &mut local, shared);
        }
        // Every round: under emulation a round can take a second.
        if until.is_some_and(|u| Instant::now() >= u) {
            break;
        }
    }
    linux::set_doing(thread, 0);
    checker.detach();
    flush(&pairs, &mut local, shared);
}

fn flush(pairs: &[(usize, usize)], local: &mut [u64], shared: &Shared) {
    for (n, &(c, w)) in local.iter_mut().zip(pairs) {
        shared.checks[c][w].fetch_add(*n, Ordering::Relaxed);
        *n = 0;
    }
}

/// Run `plan` with `triggers`; `progress` is called about ten times a second. The signal
/// handlers are installed for the run and the default dispositions put back after it.
///
/// A fault that a thread cannot survive (see [`crate::forensics`]) stops the run at once:
/// `fatal` gets what the run found so far (the fault included) and must report it, and the
/// process then ends with exit code 1, since the faulted thread can never be joined.
pub fn run(plan: &Plan, triggers: &TriggerSet, mut progress: impl FnMut(&Progress), fatal: &dyn Fn(Outcome)) -> std::io::Result<Outcome> {
    linux::set_clobber_values(handler_values(plan))?;
    linux::install_fault_handlers()?;
    linux::clear_faults();
    let _altstack = linux::AltStack::new()?;
    let shared = Shared::new(plan);
    let active = triggers.start(plan, &shared.stop);
    linux::MONITORED.store(true, Ordering::Release);
    let interrupted = std::thread::scope(|s| {
        for t in 0..plan.threads {
            let (shared, active) = (&shared, &active);
            s.spawn(move || run_checker_slot(plan, shared, t as u32, active));
        }
        for a in active.aggressors() {
            let ctx = &active.ctx;
            s.spawn(move || {
                let _altstack = linux::AltStack::new()
                    .inspect_err(|e| eprintln!("regtorture: trigger {}: no alternate signal stack (a fault of it would go unexplained): {e}", a.name()));
                a.aggressor(ctx)
            });
        }
        let deadline = shared.start + plan.duration;
        let mut interrupted = false;
        let mut faults_seen = 0;
        while !shared.should_stop() {
            if linux::fatal_fault() {
                shared.stop.store(true, Ordering::Relaxed);
                // Give the other threads a moment to finish their windows, then report.
                std::thread::sleep(Duration::from_millis(200));
                fatal(outcome(plan, triggers, &active, &shared, false));
                std::process::exit(crate::error::EXIT_CORRUPTION);
            }
            if linux::STOP_REQUESTED.load(Ordering::Acquire) {
                interrupted = true;
                break;
            }
            // A fault the thread survived (the backend recovered it) ends a stop-on-first run
            // unless it is a known bug's; each new one is decoded once.
            let faults = linux::fault_count();
            if plan.stop_on_first && faults > faults_seen {
                faults_seen = faults;
                if plan.stop_on_known || shared.faults(plan, &active.names()).iter().any(|f| f.signature.is_none()) {
                    break;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            progress(&Progress {
                elapsed: shared.start.elapsed(),
                checks: shared.total_checks(),
                mismatches: shared.mismatch_count.load(Ordering::Relaxed) + linux::fault_count(),
                trigger_events: active.events(),
            });
            std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
        }
        shared.stop.store(true, Ordering::Relaxed);
        // Timer signals could keep a slow (emulated) thread in its handler past the end.
        linux::disarm_thread_timers();
        interrupted
    });
    linux::MONITORED.store(false, Ordering::Release);
    // Every thread of the run is joined: no handler can be needed any more.
    linux::restore_default_handlers();
    Ok(outcome(plan, triggers, &active, &shared, interrupted))
}

/// Whether frame rewrites (and their control) reach `class`: a plain class whose windows keep
/// what they hold (not a transition view, not riscv64's V, which its system calls discard).
pub(crate) fn rewritable(class: ClassId) -> bool {
    !class.is_transition() && !WindowKind::ALL.iter().any(|&k| arch::native().scrubbed(class, k))
}

/// What the run found so far.
fn outcome(plan: &Plan, triggers: &TriggerSet, active: &ActiveTriggers<'_>, shared: &Shared, interrupted: bool) -> Outcome {
    let elapsed = shared.start.elapsed();
    let results = triggers.results(active, elapsed);
    Outcome {
        elapsed,
        checks: shared.checks.iter().map(|r| r.iter().map(|c| c.load(Ordering::Relaxed)).collect()).collect(),
        mismatch_count: shared.mismatch_count.load(Ordering::Relaxed),
        mismatches: shared.mismatches.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        interrupted,
        triggers: results,
        faults: shared.faults(plan, &active.names()),
        fault_count: linux::fault_count(),
    }
}

/// The values the signal handler loads into every class: the pattern of a thread number no
/// checking thread has, so a register left holding one is recognisable.
pub fn handler_values(plan: &Plan) -> Vec<(ClassId, Vec<u64>)> {
    plan.layouts
        .iter()
        .map(|l| {
            let mut v = vec![0; l.words];
            Template::new(&plan.pattern, l, pattern::HANDLER_THREAD).fill(&plan.pattern, 0, &mut v);
            (l.id, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::TriggerReport;
    use crate::schema::TriggerStatus;

    fn outcome(secs: u64, checks: u64, events: u64, rate: f64) -> Outcome {
        Outcome {
            elapsed: Duration::from_secs(secs),
            checks: vec![vec![checks, 1]],
            mismatch_count: 0,
            mismatches: vec![],
            interrupted: false,
            faults: vec![],
            fault_count: 0,
            triggers: vec![TriggerReport {
                name: "io_uring".into(),
                status: TriggerStatus::Ran,
                reason: None,
                events,
                events_per_s: events as f64 / secs as f64,
                details: vec![("fresh_checking_threads".into(), 10.0), ("creations_per_s_per_thread".into(), rate)],
            }],
        }
    }

    #[test]
    fn phases_merge_counts_add_and_rates_average_over_time() {
        let mut a = outcome(1, 100, 50, 40.0);
        a.merge(outcome(3, 300, 30, 8.0), 10);
        assert_eq!(a.elapsed, Duration::from_secs(4));
        assert_eq!(a.checks, vec![vec![400, 2]]);
        let t = &a.triggers[0];
        assert_eq!(t.events, 80);
        assert_eq!(t.events_per_s, 20.0);
        assert_eq!(t.details[0].1, 20.0);
        assert_eq!(t.details[1].1, (40.0 * 1.0 + 8.0 * 3.0) / 4.0);
    }

    /// A register whose upper lanes all read zero and lower ones held is read as cut short, with
    /// the length it was cut to; zero in the middle, or a wrong low lane, is not.
    #[test]
    fn a_register_cut_short_is_read_as_truncated() {
        let layout = crate::class::ClassLayout::data_regs(crate::class::ClassId::Sve, "z", 2, 64);
        let lane = |lane: usize, observed: u64| LaneDiff {
            lane,
            expected: Hex(7),
            observed: Hex(observed),
            xor: Hex(7 ^ observed),
            bits_changed: 0,
            reading: Reading::Zero,
            offset: None,
        };
        let mut m = finding("z1", false);
        m.lanes = (2..8).map(|l| lane(l, 0)).collect();
        assert_eq!(truncation(&layout, &m).map(|t| t.bytes), Some(16));
        m.lanes = (2..7).map(|l| lane(l, 0)).collect();
        assert_eq!(truncation(&layout, &m), None, "lane 7 held: not a cut");
        m.lanes = (2..8).map(|l| lane(l, u64::from(l == 5))).collect();
        assert_eq!(truncation(&layout, &m), None, "not all zero");
        m.lanes = (0..8).map(|l| lane(l, 0)).collect();
        assert_eq!(truncation(&layout, &m), None, "all zero is zero, not a cut");
    }

    fn finding(register: &str, known: bool) -> Mismatch {
        Mismatch {
            thread: 0,
            tid: 1,
            cpu: 0,
            iteration: 1,
            elapsed_s: 0.0,
            class: crate::class::ClassId::Gpr,
            register: register.into(),
            window: crate::window::WindowKind::Spin,
            triggers: vec![],
            lanes: vec![],
            control_images: vec![],
            signature: known.then(|| crate::schema::SignatureMatch {
                id: "riscv-execve-gpr".into(),
                acknowledged: false,
                name: String::new(),
                confidence: String::new(),
                fix: String::new(),
                affected: String::new(),
                reference: String::new(),
            }),
            window_ns: None,
            timeline: None,
            ptrace: None,
            truncated: None,
        }
    }

    /// A known bug that recurs in every window fills the kept list; a new finding still gets
    /// in (it takes the last known one's place), and only it ends a stop-on-first run.
    #[test]
    fn a_new_finding_is_kept_and_ends_the_run_where_a_known_bug_does_not() {
        let mut kept = Vec::new();
        for i in 0..5 {
            keep_findings(&mut kept, vec![finding(&format!("k{i}"), true)], 3);
        }
        assert_eq!(kept.len(), 3);
        let mut o = outcome(1, 1, 0, 0.0);
        o.mismatch_count = 5;
        o.mismatches = kept.clone();
        assert!(!o.has_unknown_finding(), "known bugs only");
        assert!(!o.ends_a_stop_on_first_run(false), "a known bug does not end the run");
        assert!(o.ends_a_stop_on_first_run(true), "triage stops at any finding");
        keep_findings(&mut kept, vec![finding("new", false), finding("k9", true)], 3);
        assert_eq!(kept.iter().map(|m| m.register.as_str()).collect::<Vec<_>>(), ["k0", "k1", "new"]);
        o.mismatches = kept.clone();
        assert!(o.has_unknown_finding());
        // Full of unknown ones: nothing more is taken.
        let mut full = vec![finding("a", false), finding("b", false)];
        keep_findings(&mut full, vec![finding("c", false)], 2);
        assert_eq!(full.len(), 2);
        // A counted mismatch that was not kept is judged unknown.
        o.mismatches.clear();
        assert!(o.has_unknown_finding());
    }
}
