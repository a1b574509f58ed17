//! Triggers: things outside a checking thread's instruction stream that make the kernel save,
//! switch or restore that thread's register state while its registers are live.
//!
//! Each trigger is one file here, behind [`Trigger`]. A trigger never touches registers; it
//! makes kernel events happen, and counts them. It may act in three ways:
//!
//! * an *aggressor* thread of its own ([`Trigger::aggressor`]), running until the run stops;
//! * a hook on every checking thread as it starts ([`Trigger::checker_start`]), whose guard is
//!   dropped when that thread ends (a timer of its own, an io_uring with work queued);
//! * asking for checking threads to be replaced by fresh ones every so often
//!   ([`Trigger::checker_lifetime`]), for state the kernel keeps per task.
//!
//! [`TriggerSet`] holds the selected triggers with their availability; [`ActiveTriggers`] is the
//! running set a run's threads share.

mod affinity;
mod fault;
mod inject;
pub mod iouring;
mod membarrier;
mod oversubscribe;
mod ptrace;
mod replay;
mod tgkill;
mod timer;
mod tlb;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::arch::linux;
use crate::plan::Plan;
use crate::schema::{TriggerReport, TriggerResults, TriggerStatus};
pub use ptrace::{Board, Record, StopKind};

/// What every trigger provides.
pub trait Trigger: Send + Sync {
    /// Its name, what it drives and whether it has an aggressor thread.
    fn about(&self) -> About;
    /// The name used by `--triggers` and in reports.
    fn name(&self) -> &'static str {
        self.about().name
    }
    /// One line on what kernel path it drives.
    fn describe(&self) -> &'static str {
        self.about().describe
    }
    /// `Ok` when it can run here, else why not.
    fn available(&self) -> Result<(), String> {
        (self.about().check)()
    }
    /// Runs on a thread of its own until `ctx.stop` is set.
    fn aggressor(&self, _ctx: &TriggerCtx) {}
    /// Called on each checking thread as it starts; the guard is dropped as it ends.
    fn checker_start(&self, _ctx: &TriggerCtx) -> Option<Box<dyn Send>> {
        None
    }
    /// Replace each checking thread by a fresh one after this long.
    fn checker_lifetime(&self) -> Option<Duration> {
        None
    }
    /// Extra checking threads this trigger wants (beyond `--threads`).
    fn extra_threads(&self) -> usize {
        0
    }
    /// Kernel events caused so far.
    fn events(&self) -> u64;
    /// The shared records of a trigger that reads and writes the checking threads' registers
    /// from outside (ptrace): each checking thread publishes its windows there and takes
    /// what the tracer saw and wrote.
    fn board(&self, _plan: &Plan) -> Option<&Board> {
        None
    }
    /// Further figures for the report: (name, value).
    fn details(&self, _elapsed: Duration, _checker_seconds: f64) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// What a trigger is: the name `--triggers` and reports use, one line on the kernel path it
/// drives, and whether it runs an aggressor thread of its own ([`Trigger::aggressor`]).
#[derive(Clone, Copy, Debug)]
pub struct About {
    pub name: &'static str,
    pub describe: &'static str,
    pub aggressor: bool,
    /// Whether it can run here (the default of [`Trigger::available`]).
    pub check: fn() -> Result<(), String>,
}

impl About {
    /// A trigger that acts from an aggressor thread.
    pub const fn aggressor(name: &'static str, describe: &'static str) -> About {
        About { name, describe, aggressor: true, check: || Ok(()) }
    }

    /// A trigger that acts through the checking threads themselves (hooks, extra threads).
    pub const fn hooks(name: &'static str, describe: &'static str) -> About {
        About { name, describe, aggressor: false, check: || Ok(()) }
    }

    /// The same, runnable only where `check` says so.
    pub const fn when(self, check: fn() -> Result<(), String>) -> About {
        About { check, ..self }
    }
}

/// The shape of most aggressors: one action repeated until the run stops, with a pause between
/// rounds. The action gets the run's context and the round number and says how many kernel
/// events it caused.
pub struct Repeat {
    about: About,
    pause: Duration,
    act: fn(&TriggerCtx, u64) -> u64,
    done: AtomicU64,
    /// Where the events are counted, when not as the actions' own count (which then becomes
    /// the named detail).
    events_from: Option<(Count, &'static str)>,
    /// A further figure for the report, read when it is made.
    extra: Option<(&'static str, Count)>,
}

/// Reads a count of kernel events.
type Count = fn() -> u64;

impl Repeat {
    pub fn new(name: &'static str, describe: &'static str, pause: Duration, act: fn(&TriggerCtx, u64) -> u64) -> Repeat {
        Repeat { about: About::aggressor(name, describe), pause, act, done: AtomicU64::new(0), events_from: None, extra: None }
    }

    /// Whether it can run here.
    pub fn available(mut self, check: fn() -> Result<(), String>) -> Repeat {
        self.about = self.about.when(check);
        self
    }

    /// Report `count` as the detail `name` too.
    pub fn detail(mut self, name: &'static str, count: Count) -> Repeat {
        self.extra = Some((name, count));
        self
    }

    /// Count events with `events` (what the kernel did), and the actions as `detail`.
    pub fn events_from(mut self, events: Count, detail: &'static str) -> Repeat {
        self.events_from = Some((events, detail));
        self
    }
}

impl Trigger for Repeat {
    fn about(&self) -> About {
        self.about
    }
    fn aggressor(&self, ctx: &TriggerCtx) {
        let mut round = 0;
        while !ctx.stopped() {
            self.done.fetch_add((self.act)(ctx, round), Ordering::Relaxed);
            round += 1;
            std::thread::sleep(self.pause);
        }
    }
    fn events(&self) -> u64 {
        self.events_from.map_or_else(|| self.done.load(Ordering::Relaxed), |(f, _)| f())
    }
    fn details(&self, _: Duration, _: f64) -> Vec<(String, f64)> {
        let own = self.events_from.map(|(_, name)| (name.to_string(), self.done.load(Ordering::Relaxed) as f64));
        own.into_iter().chain(self.extra.map(|(name, f)| (name.to_string(), f() as f64))).collect()
    }
}

/// Every trigger, in report order.
pub fn all() -> Vec<Box<dyn Trigger>> {
    vec![
        Box::new(iouring::IoUring::default()),
        Box::new(tgkill::trigger()),
        Box::new(timer::Timer),
        Box::new(membarrier::trigger()),
        Box::new(tlb::trigger()),
        Box::new(affinity::trigger()),
        Box::new(oversubscribe::Oversubscribe::default()),
        Box::new(ptrace::trigger()),
    ]
}

/// Triggers that run only when named: positive controls, not kernel paths.
pub fn on_request() -> Vec<Box<dyn Trigger>> {
    vec![Box::new(inject::control()), Box::new(replay::control()), Box::new(fault::control()), Box::new(ptrace::control()), Box::new(tgkill::RewriteControl)]
}

/// The names of every trigger, those run only on request included.
pub fn names() -> Vec<&'static str> {
    all().iter().chain(on_request().iter()).map(|t| t.name()).collect()
}

/// What triggers share with the run.
pub struct TriggerCtx<'a> {
    pub stop: &'a AtomicBool,
    /// What the run checks.
    pub plan: &'a Plan,
    /// Kernel thread ids of the checking threads alive now.
    pub checkers: Mutex<Vec<i32>>,
    /// Seconds checking threads have lived, summed (for per-thread rates).
    checker_seconds: Mutex<f64>,
}

impl TriggerCtx<'_> {
    /// The checking threads alive now.
    pub fn checker_tids(&self) -> Vec<i32> {
        self.checkers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Selected triggers and whether each can run.
pub struct TriggerSet {
    triggers: Vec<(Box<dyn Trigger>, Result<(), String>)>,
}

impl TriggerSet {
    /// The triggers named (all of them for `None`), each checked for availability.
    pub fn select(names: Option<&[String]>) -> TriggerSet {
        let requested: Vec<Box<dyn Trigger>> = names.map(|_| on_request()).unwrap_or_default();
        let triggers = all()
            .into_iter()
            .chain(requested)
            .filter(|t| names.is_none_or(|n| n.iter().any(|x| x == t.name())))
            .map(|t| {
                let a = t.available();
                (t, a)
            })
            .collect();
        TriggerSet { triggers }
    }

    /// A set of given triggers (the benchmark's variants).
    pub fn of(triggers: Vec<Box<dyn Trigger>>) -> TriggerSet {
        TriggerSet {
            triggers: triggers
                .into_iter()
                .map(|t| {
                    let a = t.available();
                    (t, a)
                })
                .collect(),
        }
    }

    /// Triggers that cannot run, with the reason.
    pub fn skipped(&self) -> Vec<(&'static str, String)> {
        self.triggers.iter().filter_map(|(t, a)| a.clone().err().map(|e| (t.name(), e))).collect()
    }

    /// The names of the triggers that can run.
    pub fn running_names(&self) -> Vec<String> {
        self.running().map(|t| t.name().to_string()).collect()
    }

    /// Extra checking threads the running triggers want.
    pub fn extra_threads(&self) -> usize {
        self.running().map(|t| t.extra_threads()).sum()
    }

    fn running(&self) -> impl Iterator<Item = &dyn Trigger> {
        self.triggers.iter().filter(|(_, a)| a.is_ok()).map(|(t, _)| t.as_ref())
    }

    pub fn start<'a>(&'a self, plan: &'a Plan, stop: &'a AtomicBool) -> ActiveTriggers<'a> {
        ActiveTriggers { set: self, ctx: TriggerCtx { stop, plan, checkers: Mutex::new(Vec::new()), checker_seconds: Mutex::new(0.0) } }
    }

    /// The report of each trigger after a run of `elapsed`.
    pub fn results(&self, active: &ActiveTriggers<'_>, elapsed: Duration) -> TriggerResults {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let checker_seconds = *active.ctx.checker_seconds.lock().unwrap_or_else(|e| e.into_inner());
        self.triggers
            .iter()
            .map(|(t, a)| {
                let events = if a.is_ok() { t.events() } else { 0 };
                let details = if a.is_ok() { t.details(elapsed, checker_seconds) } else { Vec::new() };
                let (status, reason) = match a {
                    Err(why) => (TriggerStatus::Skipped, Some(why.clone())),
                    Ok(()) if events == 0 => (TriggerStatus::Idle, Some(idle_reason(elapsed, &details))),
                    Ok(()) => (TriggerStatus::Ran, None),
                };
                TriggerReport { name: t.name().to_string(), status, reason, events, events_per_s: events as f64 / secs, details }
            })
            .collect()
    }
}

/// Why a trigger that ran caused no event, with what it did report.
fn idle_reason(elapsed: Duration, details: &[(String, f64)]) -> String {
    let seen: Vec<String> = details.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("ran for {:.1} s but caused no event{}", elapsed.as_secs_f64(), if seen.is_empty() { String::new() } else { format!(" ({})", seen.join(", ")) })
}

/// The triggers of a run, while it runs.
pub struct ActiveTriggers<'a> {
    set: &'a TriggerSet,
    pub ctx: TriggerCtx<'a>,
}

/// Dropped when a checking thread ends: unregisters it and ends its per-thread trigger state.
pub struct CheckerGuard<'a> {
    ctx: &'a TriggerCtx<'a>,
    tid: i32,
    started: Instant,
    _hooks: Vec<Box<dyn Send>>,
}

impl Drop for CheckerGuard<'_> {
    fn drop(&mut self) {
        self.ctx.checkers.lock().unwrap_or_else(|e| e.into_inner()).retain(|&t| t != self.tid);
        *self.ctx.checker_seconds.lock().unwrap_or_else(|e| e.into_inner()) += self.started.elapsed().as_secs_f64();
    }
}

impl ActiveTriggers<'_> {
    /// The names of the running triggers.
    pub fn names(&self) -> Vec<String> {
        self.set.running().map(|t| t.name().to_string()).collect()
    }

    /// Events so far, per running trigger.
    pub fn events(&self) -> Vec<(String, u64)> {
        self.set.running().map(|t| (t.name().to_string(), t.events())).collect()
    }

    /// The triggers that want a thread of their own.
    pub fn aggressors(&self) -> Vec<&dyn Trigger> {
        self.set.running().filter(|t| t.about().aggressor).collect()
    }

    /// Register the calling checking thread and run the triggers' per-thread hooks.
    pub fn enter_checker(&self) -> CheckerGuard<'_> {
        let tid = linux::gettid();
        let hooks = self.set.running().filter_map(|t| t.checker_start(&self.ctx)).collect();
        self.ctx.checkers.lock().unwrap_or_else(|e| e.into_inner()).push(tid);
        CheckerGuard { ctx: &self.ctx, tid, started: Instant::now(), _hooks: hooks }
    }

    /// The board of the running trigger that has one (ptrace).
    pub fn board(&self) -> Option<&Board> {
        self.set.running().find_map(|t| t.board(self.ctx.plan))
    }

    /// How long a checking thread may live before a fresh one replaces it: the shortest
    /// [`Trigger::checker_lifetime`] of the running triggers, `None` for the whole run.
    pub fn checker_lifetime(&self) -> Option<Duration> {
        self.set.running().filter_map(|t| t.checker_lifetime()).min()
    }
}
