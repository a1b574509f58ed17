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
mod replay;
mod tgkill;
mod timer;
mod tlb;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};


use crate::arch::linux;
use crate::plan::Plan;
use crate::schema::{TriggerReport, TriggerResults, TriggerStatus};

/// What every trigger provides.
pub trait Trigger: Send + Sync {
    /// The name used by `--triggers` and in reports.
    fn name(&self) -> &'static str;
    /// One line on what kernel path it drives.
    fn describe(&self) -> &'static str;
    /// `Ok` when it can run here, else why not.
    fn available(&self) -> Result<(), String>;
    /// Whether [`Trigger::aggressor`] does anything.
    fn has_aggressor(&self) -> bool {
        false
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
    /// Further figures for the report: (name, value).
    fn details(&self, _elapsed: Duration, _checker_seconds: f64) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// Every trigger, in report order.
pub fn all() -> Vec<Box<dyn Trigger>> {
    vec![
        Box::new(iouring::IoUring::default()),
        Box::new(tgkill::Tgkill::default()),
        Box::new(timer::Timer::default()),
        Box::new(membarrier::Membarrier::default()),
        Box::new(tlb::Tlb::default()),
        Box::new(affinity::Affinity::default()),
        Box::new(oversubscribe::Oversubscribe::default()),
    ]
}

/// Triggers that run only when named: positive controls, not kernel paths.
pub fn on_request() -> Vec<Box<dyn Trigger>> {
    vec![Box::new(inject::Inject::default()), Box::new(replay::Replay::default()), Box::new(fault::FaultControl::default())]
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
        TriggerSet { triggers: triggers.into_iter().map(|t| { let a = t.available(); (t, a) }).collect() }
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
        ActiveTriggers {
            set: self,
            ctx: TriggerCtx { stop, plan, checkers: Mutex::new(Vec::new()), checker_seconds: Mutex::new(0.0) },
        }
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
    format!(
        "ran for {:.1} s but caused no event{}",
        elapsed.as_secs_f64(),
        if seen.is_empty() { String::new() } else { format!(" ({})", seen.join(", ")) }
    )
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
        self.set.running().filter(|t| t.has_aggressor()).collect()
    }

    /// Register the calling checking thread and run the triggers' per-thread hooks.
    pub fn enter_checker(&self) -> CheckerGuard<'_> {
        let tid = linux::gettid();
        let hooks = self.set.running().filter_map(|t| t.checker_start(&self.ctx)).collect();
        self.ctx.checkers.lock().unwrap_or_else(|e| e.into_inner()).push(tid);
        CheckerGuard { ctx: &self.ctx, tid, started: Instant::now(), _hooks: hooks }
    }

    /// How long a checking thread may live before a fresh one replaces it: the shortest
    /// [`Trigger::checker_lifetime`] of the running triggers, `None` for the whole run.
    pub fn checker_lifetime(&self) -> Option<Duration> {
        self.set.running().filter_map(|t| t.checker_lifetime()).min()
    }
}
